/**
 * Issue 16, Registries and prices: usage units live in a versioned registry
 * (packages/contracts/registry/usage-units.json, loaded by billing's
 * migration); price books are versioned per currency, effective from an
 * instant, with exact decimal prices per unit and resource, audited when
 * published, and never changed once written.
 */
import { readFileSync } from 'node:fs';
import { ManualClock } from '@aifactory/clock';
import { PriceBookStore } from '../src/data/price-books.js';
import { canonicalDecimal, PriceBooks, type PublishPriceBookInput } from '../src/domain/price-books.js';
import { billingAccess, orgAdmin, platformAdmin } from './billing-access.js';
import { codeOf, startBillingFixture, type BillingFixture } from './billing-fixture.js';

const clock = new ManualClock(Date.UTC(2026, 4, 1, 12));
let fx: BillingFixture;
let books: PriceBooks;

beforeAll(async () => {
  fx = await startBillingFixture();
  books = new PriceBooks(fx.database.pool, new PriceBookStore(fx.database.pool), { subjectPrefix: '', clock });
});

afterAll(async () => {
  await fx?.close();
});

const authz = billingAccess();
const admin = () => authz.caller(platformAdmin);
/** An organization's admin: reads billing, holds no platform:billing:admin. */
const reader = () => authz.caller(orgAdmin('0b7d2a4e-8f1c-4c39-9a51-2f6e4d8c1a10'));
const nobody = () => authz.caller({ type: 'user', subject: 'nobody', platformRoles: [], grants: [] });


const gpuBook = (currency: string, overrides: Partial<PublishPriceBookInput> = {}): PublishPriceBookInput => ({
  currency,
  description: 'GPU prices',
  prices: [
    { unit: 'gpu_hour', unitPrice: '250.5' },
    { unit: 'gpu_hour', resourceType: 'gpu_sku', unitPrice: '300' },
    { unit: 'gpu_hour', resourceType: 'gpu_sku', resourceId: 'h100-80gb', unitPrice: '412.123456789012' },
    { unit: 'token_input', unitPrice: '0.000150000000' },
  ],
  ...overrides,
});

describe('the usage-unit registry', () => {
  it("equals the committed registry file, row for row, in billing's migrated table", async () => {
    const file = JSON.parse(readFileSync(new URL('../../../packages/contracts/registry/usage-units.json', import.meta.url), 'utf8')) as Record<string, unknown>[];
    const { rows } = await fx.admin.query(
      `SELECT id, version, owner_product AS "ownerProduct", display_name AS "displayName", base_unit AS "baseUnit", base_per_unit AS "basePerUnit",
         precision, rating_category AS "ratingCategory", lifecycle, description
       FROM usage_units ORDER BY id, version`,
    );
    const byKey = (a: Record<string, unknown>, b: Record<string, unknown>) => `${a.id}:${a.version}`.localeCompare(`${b.id}:${b.version}`);
    expect(rows.sort(byKey)).toEqual([...file].sort(byKey));
    expect(file.map((unit) => unit.id).sort()).toEqual(['app_runtime_hour', 'cached_token', 'gpu_hour', 'request', 'token_input', 'token_output']);
  });

  it('lists the newest version of each unit to readers of billing', async () => {
    const units = await books.usageUnits(reader().access);
    expect(units.find((unit) => unit.id === 'gpu_hour')).toMatchObject({ version: 1, baseUnit: 'gpu_second', basePerUnit: 3600, ratingCategory: 'interval' });
    expect(await codeOf(books.usageUnits(nobody().access))).toBe('AUTH_FORBIDDEN');
  });
});

describe('price books', () => {
  it('publishes version 1, 2, ... per currency with exact decimal prices and an audit record in the same transaction', async () => {
    const first = await books.publish(admin(), gpuBook('JPY'));
    const second = await books.publish(admin(), gpuBook('JPY', { description: 'GPU prices, May' }));
    const other = await books.publish(admin(), gpuBook('SEK'));
    expect([first.version, second.version, other.version]).toEqual([1, 2, 1]);
    expect(first.effectiveFrom).toEqual(clock.now());
    expect(first.prices).toEqual([
      { unitId: 'gpu_hour', unitVersion: 1, resourceType: '*', resourceId: '*', unitPrice: '250.5' },
      { unitId: 'gpu_hour', unitVersion: 1, resourceType: 'gpu_sku', resourceId: '*', unitPrice: '300' },
      { unitId: 'gpu_hour', unitVersion: 1, resourceType: 'gpu_sku', resourceId: 'h100-80gb', unitPrice: '412.123456789012' },
      { unitId: 'token_input', unitVersion: 1, resourceType: '*', resourceId: '*', unitPrice: '0.00015' },
    ]);

    const audit = await fx.admin.query<{ subject: string; payload: Record<string, unknown> }>(
      "SELECT subject, payload FROM outbox_events WHERE type = 'platform.audit.billing.price_book.publish' AND payload->'details'->>'priceBookId' = $1",
      [first.id],
    );
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0]!.subject).toBe('platform.audit.billing.price_book.publish');
    expect(audit.rows[0]!.payload).toMatchObject({
      action: 'billing.price_book.publish',
      outcome: 'succeeded',
      privileged: true,
      principal: { type: 'user', id: 'platform-admin' },
      scope: 'platform:billing:admin',
      details: { currency: 'JPY', version: 1, prices: 4 },
    });

    const page = await books.list(reader().access, 'JPY', { first: 1 });
    expect(page.edges.map((edge) => edge.node.version)).toEqual([1]);
    expect(page.pageInfo.hasNextPage).toBe(true);
    const next = await books.list(reader().access, 'JPY', { first: 1, after: page.pageInfo.endCursor });
    expect(next.edges.map((edge) => edge.node.description)).toEqual(['GPU prices, May']);
    expect(next.pageInfo.hasNextPage).toBe(false);
    expect((await books.get(reader().access, second.id))?.prices).toHaveLength(4);
  });

  it('gives concurrent publishers of one currency distinct consecutive versions', async () => {
    const published = await Promise.all(Array.from({ length: 6 }, (_, i) => books.publish(admin(), gpuBook('NOK', { description: `race ${i}` }))));
    expect(published.map((book) => book.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('prices a resource by its own price, else its type’s, else the unit’s default, from the book in force at the instant', async () => {
    const may = new Date(Date.UTC(2026, 4, 2));
    const june = new Date(Date.UTC(2026, 5, 1));
    await books.publish(admin(), gpuBook('DKK', { effectiveFrom: may }));
    await books.publish(admin(), { currency: 'DKK', description: 'June', effectiveFrom: june, prices: [{ unit: 'gpu_hour', unitPrice: '999' }] });

    const at = (instant: Date, resourceType = 'gpu_sku', resourceId = 'h100-80gb') => books.priceInForce('DKK', 'gpu_hour', resourceType, resourceId, instant);
    const mid = new Date(Date.UTC(2026, 4, 15));
    expect(await at(new Date(Date.UTC(2026, 4, 1, 23)))).toBeNull();
    expect((await at(mid))?.price.unitPrice).toBe('412.123456789012');
    expect((await at(mid, 'gpu_sku', 'a100-40gb'))?.price.unitPrice).toBe('300');
    expect((await at(mid, 'model', 'llama'))?.price.unitPrice).toBe('250.5');
    expect(await at(mid)).toMatchObject({ priceBookVersion: 1, currency: 'DKK' });
    // June's book replaces May's whole: its default price applies, and the older book's resource prices do not.
    expect(await at(june)).toMatchObject({ priceBookVersion: 2, price: { unitPrice: '999', resourceType: '*' } });
    expect(await books.priceInForce('DKK', 'token_input', '*', '*', june)).toBeNull();
    expect((await books.priceInForce('DKK', 'token_input', '*', '*', mid))?.price.unitPrice).toBe('0.00015');
  });

  it('refuses unknown or retired units, bad prices, past starts and duplicates, and callers without the admin scope', async () => {
    const refused = (input: PublishPriceBookInput) => codeOf(books.publish(admin(), input));
    expect(await refused(gpuBook('PLN', { prices: [{ unit: 'gpu_minute', unitPrice: '1' }] }))).toBe('BILLING_USAGE_UNIT_UNKNOWN');
    for (const unitPrice of ['-1', '1.1234567890123', '1e3', '0x10', '', '1,5', '1000000000000000000']) {
      expect([unitPrice, await refused(gpuBook('PLN', { prices: [{ unit: 'gpu_hour', unitPrice }] }))]).toEqual([unitPrice, 'BILLING_PRICE_BOOK_INVALID']);
    }
    expect(await refused(gpuBook('PLN', { effectiveFrom: new Date(clock.nowMs() - 1) }))).toBe('BILLING_PRICE_BOOK_INVALID');
    expect(await refused(gpuBook('PLN', { prices: [{ unit: 'request', unitPrice: '1' }, { unit: 'request', resourceType: '*', resourceId: '*', unitPrice: '2' }] }))).toBe(
      'BILLING_PRICE_BOOK_INVALID',
    );
    expect(await refused(gpuBook('PLN', { prices: [{ unit: 'request', resourceId: 'llama', unitPrice: '1' }] }))).toBe('BILLING_PRICE_BOOK_INVALID');
    expect(await refused(gpuBook('PLN', { prices: [] }))).toBe('BILLING_PRICE_BOOK_INVALID');
    expect(await refused(gpuBook('pln'))).toBe('BILLING_PRICE_BOOK_INVALID');
    expect(await codeOf(books.publish(reader(), gpuBook('PLN')))).toBe('AUTH_FORBIDDEN');
    await new Promise((resolve) => setImmediate(resolve));
    expect(authz.denies.map((deny) => deny.record.scope)).toContain('platform:billing:admin');

    await fx.admin.query("INSERT INTO usage_units (id, version, owner_product, display_name, base_unit, base_per_unit, precision, rating_category, lifecycle, description) SELECT id, 2, owner_product, display_name, base_unit, base_per_unit, precision, rating_category, 'retired', description FROM usage_units WHERE id = 'cached_token' AND version = 1");
    expect(await refused(gpuBook('PLN', { prices: [{ unit: 'cached_token', unitPrice: '1' }] }))).toBe('BILLING_USAGE_UNIT_UNKNOWN');

    const written = await fx.admin.query("SELECT count(*)::int AS n FROM price_books WHERE currency = 'PLN'");
    expect(written.rows[0].n).toBe(0);
  });

  it('is never changed once written: the database refuses UPDATE and DELETE on books and prices', async () => {
    const book = await books.publish(admin(), gpuBook('CZK'));
    const app = fx.database.pool;
    await expect(app.query('UPDATE price_books SET description = $2 WHERE id = $1', [book.id, 'rewritten'])).rejects.toMatchObject({ code: '42501' });
    await expect(app.query("UPDATE price_book_prices SET unit_price = 1 WHERE price_book_id = $1", [book.id])).rejects.toMatchObject({ code: '42501' });
    await expect(fx.admin.query('DELETE FROM price_book_prices WHERE price_book_id = $1', [book.id])).rejects.toMatchObject({ code: 'LDG01' });
    expect(canonicalDecimal('2.000000000000')).toBe('2');
  });
});
