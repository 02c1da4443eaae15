import type pg from 'pg';
import { z } from 'zod';
import type { Access } from '@aifactory/authz';
import type { Clock } from '@aifactory/clock';
import { AppError } from '@aifactory/errors';
import type { Principal } from '@aifactory/service-auth';
import { actorOf } from '@aifactory/subgraph-kit';
import type { NewPrice, PriceBookRow, PriceBookStore, PriceRow, UsageUnit } from '../data/price-books.js';
import { inTransaction } from '../data/transactions.js';
import { recordAudit } from './audit.js';
import { BILLING_READ } from './balances.js';
import { CURRENCY_PATTERN } from './money.js';
import { connectionOf, pageRequest, type Connection } from './pagination.js';

/** Publishing prices is a platform admin's: `platform:billing:admin` (platform_admin holds every scope). */
export const BILLING_ADMIN = 'platform:billing:admin';

/** Any resource of a type, or any resource at all: the fallback price. */
const ANY_RESOURCE = '*';

/** Minor units per unit, exact to 12 decimals, as DECIMAL(30,12) holds it: up to 18 integer digits. */
const UNIT_PRICE = /^(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?$/;
const RESOURCE_TYPE = /^[a-z][a-z0-9_]{0,62}$/;
const RESOURCE_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const MAX_PRICES = 2_000;
/** Two publishers racing for the same version number: the loser takes the next one. */
const VERSION_ATTEMPTS = 10;

const uuid = z.uuid();
const publishInput = z.object({
  currency: z.string().regex(CURRENCY_PATTERN, 'must be an ISO 4217 code such as USD'),
  effectiveFrom: z.date().nullish(),
  description: z.string().trim().min(1).max(500),
  prices: z
    .array(
      z.object({
        unit: z.string().min(1).max(64),
        resourceType: z.string().regex(RESOURCE_TYPE, 'must be a resource type such as gpu_sku, or *').or(z.literal(ANY_RESOURCE)).nullish(),
        resourceId: z.string().regex(RESOURCE_ID, 'must be a resource id such as h100-80gb, or *').or(z.literal(ANY_RESOURCE)).nullish(),
        unitPrice: z.string().regex(UNIT_PRICE, 'must be a non-negative decimal of minor units with at most 12 decimals, such as "0.0125"'),
      }),
    )
    .min(1)
    .max(MAX_PRICES),
});

export type PublishPriceBookInput = z.input<typeof publishInput>;

/** A price as clients see it: minor units of the book's currency per unit, as a canonical decimal string. */
export interface Price {
  unitId: string;
  unitVersion: number;
  resourceType: string;
  resourceId: string;
  unitPrice: string;
}

export interface PriceBook extends Omit<PriceBookRow, 'actor'> {
  prices: Price[];
}

/** The price that applies to one unit of one resource at one instant, and the book version it came from. */
export interface PriceInForce {
  priceBookId: string;
  priceBookVersion: number;
  currency: string;
  price: Price;
}

/** Who publishes: the request's principal, authorization and correlation id. */
export interface PublishingCaller {
  principal: Principal;
  access: Access;
  correlationId: string;
}

/** `1.500000000000` (as DECIMAL(30,12) comes back) is `1.5`; `2.000000000000` is `2`. */
export function canonicalDecimal(text: string): string {
  if (!text.includes('.')) return text;
  const trimmed = text.replace(/0+$/, '');
  return trimmed.endsWith('.') ? trimmed.slice(0, -1) : trimmed;
}

const priceOf = (row: PriceRow): Price => ({
  unitId: row.unitId,
  unitVersion: row.unitVersion,
  resourceType: row.resourceType,
  resourceId: row.resourceId,
  unitPrice: canonicalDecimal(row.unitPrice),
});

function invalid(message: string, details: Record<string, unknown>): AppError {
  return new AppError('BILLING_PRICE_BOOK_INVALID', message, { details });
}

/**
 * The usage-unit registry and the price books (ARCHITECTURE.md, Money):
 * a price book is a version per currency, effective from an instant not
 * in the past, with exact decimal prices per unit and resource; it is
 * never changed once written (the database refuses), so what was rated
 * under it stays explained. A publish is audited (`billing.price_book.publish`).
 */
export class PriceBooks {
  constructor(
    private readonly pool: pg.Pool,
    private readonly store: PriceBookStore,
    private readonly options: { subjectPrefix: string; clock: Clock },
  ) {}

  /** The newest version of every usage unit. */
  async usageUnits(access: Access): Promise<UsageUnit[]> {
    access.requireHolds(BILLING_READ);
    return this.store.latestUnits();
  }

  async publish(caller: PublishingCaller, input: PublishPriceBookInput): Promise<PriceBook> {
    caller.access.requireHolds(BILLING_ADMIN);
    const valid = publishInput.safeParse(input);
    if (!valid.success) {
      const issue = valid.error.issues[0];
      const field = issue && issue.path.length > 0 ? issue.path.join('.') : 'input';
      throw new AppError('BILLING_PRICE_BOOK_INVALID', `${field} ${issue?.message ?? 'is invalid'}`, { details: { field }, cause: valid.error });
    }
    const { currency, description } = valid.data;
    const now = this.options.clock.now();
    const effectiveFrom = valid.data.effectiveFrom ?? now;
    // Historical pricing is never reinterpreted: a book cannot start before it exists.
    if (effectiveFrom.getTime() < now.getTime()) {
      throw invalid('effectiveFrom must not be in the past', { field: 'effectiveFrom', effectiveFrom: effectiveFrom.toISOString() });
    }
    const prices = await this.checkedPrices(valid.data.prices);
    const actor = actorOf(caller.principal);
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await inTransaction(this.pool, async (tx) => {
          const book = await this.store.insertBook(tx, { currency, effectiveFrom, description, actor });
          const rows = await this.store.insertPrices(tx, book.id, prices);
          await recordAudit(
            tx,
            {
              action: 'billing.price_book.publish',
              caller,
              scope: BILLING_ADMIN,
              resource: null,
              reason: description,
              details: { priceBookId: book.id, currency, version: book.version, effectiveFrom: effectiveFrom.toISOString(), prices: rows.length },
            },
            { subjectPrefix: this.options.subjectPrefix },
          );
          return { ...withoutActor(book), prices: rows.map(priceOf) };
        });
      } catch (error) {
        const { code, constraint } = error as { code?: string; constraint?: string };
        if (attempt < VERSION_ATTEMPTS && code === '23505' && constraint === 'price_books_currency_version_key') continue;
        throw error;
      }
    }
  }

  /** A currency's price books, oldest version first. */
  async list(access: Access, currency: string, args: { first?: number | null; after?: string | null }): Promise<Connection<PriceBook>> {
    access.requireHolds(BILLING_READ);
    if (!CURRENCY_PATTERN.test(currency)) {
      throw new AppError('BAD_REQUEST_INVALID_INPUT', 'currency must be an ISO 4217 code such as USD', { details: { field: 'currency' } });
    }
    const page = pageRequest('version', args);
    const books = await this.store.listBooks(currency, page.after === null ? null : Number(page.after), page.first + 1);
    return connectionOf('version', await this.withPrices(books), page, (book) => String(book.version));
  }

  async get(access: Access, id: string): Promise<PriceBook | null> {
    access.requireHolds(BILLING_READ);
    if (!uuid.safeParse(id).success) return null;
    const book = await this.store.findBook(id);
    return book ? ((await this.withPrices([book]))[0] ?? null) : null;
  }

  /** `priceInForce` for a reader of billing: the resource defaults to any (`*`), the instant to now. */
  async lookup(
    access: Access,
    args: { currency: string; unit: string; resourceType?: string | null; resourceId?: string | null; at?: Date | null },
  ): Promise<PriceInForce | null> {
    access.requireHolds(BILLING_READ);
    if (!CURRENCY_PATTERN.test(args.currency)) {
      throw new AppError('BAD_REQUEST_INVALID_INPUT', 'currency must be an ISO 4217 code such as USD', { details: { field: 'currency' } });
    }
    const at = args.at ?? this.options.clock.now();
    return this.priceInForce(args.currency, args.unit, args.resourceType ?? ANY_RESOURCE, args.resourceId ?? ANY_RESOURCE, at);
  }

  /** What rating asks: the price of `unitId` for a resource in `currency` at `at`; null when the book in force has none. */
  async priceInForce(currency: string, unitId: string, resourceType: string, resourceId: string, at: Date): Promise<PriceInForce | null> {
    const found = await this.store.priceInForce(currency, unitId, resourceType, resourceId, at);
    if (!found) return null;
    return { priceBookId: found.book.id, priceBookVersion: found.book.version, currency: found.book.currency, price: priceOf(found.price) };
  }

  /** The unit version each price is recorded with is the unit's newest; a retired or unknown unit is refused. */
  private async checkedPrices(prices: z.output<typeof publishInput>['prices']): Promise<NewPrice[]> {
    const units = new Map((await this.store.latestUnits()).map((unit) => [unit.id, unit]));
    const seen = new Set<string>();
    return prices.map((price, index) => {
      const unit = units.get(price.unit);
      if (!unit || unit.lifecycle === 'retired') {
        throw new AppError('BILLING_USAGE_UNIT_UNKNOWN', `Usage unit ${price.unit} is not registered or is retired`, {
          details: { field: `prices.${index}.unit`, unit: price.unit },
        });
      }
      const resourceType = price.resourceType ?? ANY_RESOURCE;
      const resourceId = price.resourceId ?? ANY_RESOURCE;
      if (resourceType === ANY_RESOURCE && resourceId !== ANY_RESOURCE) {
        throw invalid('A price for one resource names its resource type', { field: `prices.${index}.resourceType` });
      }
      const key = JSON.stringify([unit.id, resourceType, resourceId]);
      if (seen.has(key)) {
        throw invalid('A price book prices each unit and resource once', { field: `prices.${index}`, unit: unit.id, resourceType, resourceId });
      }
      seen.add(key);
      return { unitId: unit.id, unitVersion: unit.version, resourceType, resourceId, unitPrice: price.unitPrice };
    });
  }

  private async withPrices(books: readonly PriceBookRow[]): Promise<PriceBook[]> {
    const prices = await this.store.pricesOf(books.map((book) => book.id));
    return books.map((book) => ({ ...withoutActor(book), prices: (prices.get(book.id) ?? []).map(priceOf) }));
  }
}

function withoutActor(book: PriceBookRow): Omit<PriceBookRow, 'actor'> {
  const { actor: _actor, ...rest } = book;
  return rest;
}
