import type pg from 'pg';
import type { Actor } from '@aifactory/contracts';
import type { Queryable } from '@aifactory/events';

export type UnitLifecycle = 'active' | 'deprecated' | 'retired';

/** One version of a usage unit (the usage-unit registry, packages/contracts/registry/usage-units.json). */
export interface UsageUnit {
  id: string;
  version: number;
  ownerProduct: string;
  displayName: string;
  baseUnit: string;
  basePerUnit: number;
  precision: number;
  ratingCategory: 'interval' | 'point';
  lifecycle: UnitLifecycle;
  description: string;
}

/** A price as stored: minor units per unit, an exact decimal kept as the database's text. */
export interface PriceRow {
  priceBookId: string;
  unitId: string;
  unitVersion: number;
  resourceType: string;
  resourceId: string;
  unitPrice: string;
}

export interface PriceBookRow {
  id: string;
  version: number;
  currency: string;
  effectiveFrom: Date;
  description: string;
  actor: Actor;
  createdAt: Date;
}

export interface NewPriceBook {
  currency: string;
  effectiveFrom: Date;
  description: string;
  actor: Actor;
}

export interface NewPrice {
  unitId: string;
  unitVersion: number;
  resourceType: string;
  resourceId: string;
  unitPrice: string;
}

interface UnitDbRow {
  id: string;
  version: number;
  owner_product: string;
  display_name: string;
  base_unit: string;
  base_per_unit: number;
  precision: number;
  rating_category: 'interval' | 'point';
  lifecycle: UnitLifecycle;
  description: string;
}

interface BookDbRow {
  id: string;
  version: number;
  currency: string;
  effective_from: Date;
  description: string;
  actor: Actor;
  created_at: Date;
}

interface PriceDbRow {
  price_book_id: string;
  unit_id: string;
  unit_version: number;
  resource_type: string;
  resource_id: string;
  unit_price: string;
}

const unitOf = (row: UnitDbRow): UsageUnit => ({
  id: row.id,
  version: row.version,
  ownerProduct: row.owner_product,
  displayName: row.display_name,
  baseUnit: row.base_unit,
  basePerUnit: row.base_per_unit,
  precision: row.precision,
  ratingCategory: row.rating_category,
  lifecycle: row.lifecycle,
  description: row.description,
});

const bookOf = (row: BookDbRow): PriceBookRow => ({
  id: row.id,
  version: row.version,
  currency: row.currency.trim(),
  effectiveFrom: row.effective_from,
  description: row.description,
  actor: row.actor,
  createdAt: row.created_at,
});

const priceOf = (row: PriceDbRow): PriceRow => ({
  priceBookId: row.price_book_id,
  unitId: row.unit_id,
  unitVersion: row.unit_version,
  resourceType: row.resource_type,
  resourceId: row.resource_id,
  unitPrice: row.unit_price,
});

const UNIT_COLUMNS = 'id, version, owner_product, display_name, base_unit, base_per_unit, precision, rating_category, lifecycle, description';
const BOOK_COLUMNS = 'id, version, currency, effective_from, description, actor, created_at';
const PRICE_COLUMNS = 'price_book_id, unit_id, unit_version, resource_type, resource_id, unit_price::text AS unit_price';

/** The usage-unit registry and the price books (both append-only: a new version, never a change). */
export class PriceBookStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The newest version of every unit, by id. */
  async latestUnits(): Promise<UsageUnit[]> {
    const { rows } = await this.pool.query<UnitDbRow>(`SELECT DISTINCT ON (id) ${UNIT_COLUMNS} FROM usage_units ORDER BY id, version DESC`);
    return rows.map(unitOf);
  }

  /** The next version of the currency's price books, as one statement: a concurrent publisher of the same number hits the unique index. */
  async insertBook(tx: Queryable, book: NewPriceBook): Promise<PriceBookRow> {
    const { rows } = await tx.query<BookDbRow>(
      `INSERT INTO price_books (version, currency, effective_from, description, actor)
       SELECT COALESCE(max(version), 0) + 1, $1, $2, $3, $4 FROM price_books WHERE currency = $1
       RETURNING ${BOOK_COLUMNS}`,
      [book.currency, book.effectiveFrom, book.description, JSON.stringify(book.actor)],
    );
    return bookOf(rows[0]!);
  }

  async insertPrices(tx: Queryable, priceBookId: string, prices: readonly NewPrice[]): Promise<PriceRow[]> {
    const { rows } = await tx.query<PriceDbRow>(
      `INSERT INTO price_book_prices (price_book_id, unit_id, unit_version, resource_type, resource_id, unit_price)
       SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::numeric[])
       RETURNING ${PRICE_COLUMNS}`,
      [
        priceBookId,
        prices.map((p) => p.unitId),
        prices.map((p) => p.unitVersion),
        prices.map((p) => p.resourceType),
        prices.map((p) => p.resourceId),
        prices.map((p) => p.unitPrice),
      ],
    );
    return rows.map(priceOf);
  }

  async findBook(id: string): Promise<PriceBookRow | null> {
    const { rows } = await this.pool.query<BookDbRow>(`SELECT ${BOOK_COLUMNS} FROM price_books WHERE id = $1::uuid`, [id]);
    return rows[0] ? bookOf(rows[0]) : null;
  }

  /** A currency's books by version after `afterVersion`. */
  async listBooks(currency: string, afterVersion: number | null, limit: number): Promise<PriceBookRow[]> {
    const { rows } = await this.pool.query<BookDbRow>(
      `SELECT ${BOOK_COLUMNS} FROM price_books WHERE currency = $1 AND ($2::int IS NULL OR version > $2::int) ORDER BY version LIMIT $3`,
      [currency, afterVersion, limit],
    );
    return rows.map(bookOf);
  }

  /** Each book's prices by unit, resource type and resource id. */
  async pricesOf(priceBookIds: readonly string[]): Promise<Map<string, PriceRow[]>> {
    const byBook = new Map<string, PriceRow[]>();
    if (priceBookIds.length === 0) return byBook;
    const { rows } = await this.pool.query<PriceDbRow>(
      `SELECT ${PRICE_COLUMNS} FROM price_book_prices WHERE price_book_id = ANY($1::uuid[]) ORDER BY price_book_id, unit_id, resource_type, resource_id`,
      [priceBookIds],
    );
    for (const row of rows) {
      const price = priceOf(row);
      const list = byBook.get(price.priceBookId);
      if (list) list.push(price);
      else byBook.set(price.priceBookId, [price]);
    }
    return byBook;
  }

  /**
   * The price of a unit for one resource in the currency's book in force at
   * `at` (the greatest effective_from not after it; the higher version on a
   * tie): the resource's own price, else its type's (`type`, `*`), else the
   * unit's default (`*`, `*`). Null when that book does not price the unit.
   */
  async priceInForce(
    currency: string,
    unitId: string,
    resourceType: string,
    resourceId: string,
    at: Date,
  ): Promise<{ book: PriceBookRow; price: PriceRow } | null> {
    const { rows } = await this.pool.query<BookDbRow & PriceDbRow>(
      `WITH book AS (
         SELECT ${BOOK_COLUMNS} FROM price_books WHERE currency = $1 AND effective_from <= $5
         ORDER BY effective_from DESC, version DESC LIMIT 1
       )
       SELECT b.id, b.version, b.currency, b.effective_from, b.description, b.actor, b.created_at,
         p.price_book_id, p.unit_id, p.unit_version, p.resource_type, p.resource_id, p.unit_price::text AS unit_price
       FROM book b JOIN price_book_prices p ON p.price_book_id = b.id
       WHERE p.unit_id = $2
         AND ((p.resource_type = $3 AND p.resource_id IN ($4, '*')) OR (p.resource_type = '*' AND p.resource_id = '*'))
       ORDER BY p.resource_type = '*', p.resource_id = '*'
       LIMIT 1`,
      [currency, unitId, resourceType, resourceId, at],
    );
    const row = rows[0];
    return row ? { book: bookOf(row), price: priceOf(row) } : null;
  }
}
