/**
 * Balance alerts on a real database: each check runs in the transaction of
 * the charge or credit that moved the balance, under the funds row lock the
 * ledger took, and writes its events to billing's outbox there. Announcements
 * are counted in the outbox, the only place they exist.
 */
import { randomUUID } from 'node:crypto';
import { eventEnvelopeSchema, parseEvent } from '@aifactory/contracts';
import { ManualClock } from '@aifactory/clock';
import { OUTBOX_ROW_COLUMNS, outboxEnvelopeOf, type OutboxRow } from '@aifactory/events';
import { uniqueEventSubjectPrefix } from '@aifactory/testing';
import { AccountDirectory } from '../src/data/account-directory.js';
import { inTransaction } from '../src/data/transactions.js';
import { BalanceAlerts, LOW_WARNING_REPEAT_MS } from '../src/domain/balance-alerts.js';
import { Ledger } from '../src/domain/ledger.js';
import { UsageRating } from '../src/domain/usage-rating.js';
import { startBillingFixture, testActor, type BillingFixture } from './billing-fixture.js';
import { insertBatch, pointEvent, snapshotPrice } from './rating-fixture.js';

const THRESHOLD = 1000n;
const HOUR_MS = 60 * 60 * 1000;
const t0 = new Date('2030-05-01T00:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

describe('balance alerts', () => {
  let fixture: BillingFixture;
  let alerts: BalanceAlerts;
  const subjectPrefix = uniqueEventSubjectPrefix();

  beforeAll(async () => {
    fixture = await startBillingFixture({ poolSize: 8 });
    alerts = new BalanceAlerts({ subjectPrefix });
  });

  afterAll(async () => {
    await fixture.close();
  });

  /** Charges `amount` and checks the balance in one transaction, as rating does after a posting. */
  const charge = (organizationId: string, amount: bigint, now: Date, threshold = THRESHOLD) =>
    inTransaction(fixture.database.pool, async (tx) => {
      await fixture.ledger.chargeIn(tx, { postingId: `test:${randomUUID()}`, kind: 'usage', organizationId, amount, actor: testActor });
      return alerts.checkIn(tx, organizationId, threshold, now);
    });

  /** Credits the paid balance back (a usage adjustment) and checks, in one transaction. */
  const credit = (organizationId: string, amount: bigint, now: Date, threshold = THRESHOLD) =>
    inTransaction(fixture.database.pool, async (tx) => {
      await fixture.ledger.creditIn(tx, {
        postingId: `test:${randomUUID()}`,
        kind: 'usage_adjustment',
        organizationId,
        amount,
        to: 'customer_balance',
        from: 'revenue',
        actor: testActor,
      });
      return alerts.checkIn(tx, organizationId, threshold, now);
    });

  /** The organization's announcements, in version order: `<event>:<reason>` each. */
  const announced = async (organizationId: string) => (await outboxRows(organizationId)).map((row) => `${row.type.split('.').pop()}:${row.payload.reason}`);

  const outboxRows = async (organizationId: string) =>
    (
      await fixture.admin.query<OutboxRow>(
        `SELECT ${OUTBOX_ROW_COLUMNS} FROM outbox_events WHERE aggregate_type = 'organization_balance' AND aggregate_id = $1 ORDER BY aggregate_version`,
        [organizationId],
      )
    ).rows;

  it('warns exactly once when many concurrent charges cross the threshold, and announces depletion once', async () => {
    const { organizationId } = await fixture.organization({ paid: 10_000n });
    // 40 charges of 250: the 36th to commit takes the balance to 1000, the 40th to 0, whichever they are.
    const results = await Promise.all(Array.from({ length: 40 }, () => charge(organizationId, 250n, t0)));
    expect(results.flat()).toHaveLength(2);

    const rows = await outboxRows(organizationId);
    expect(rows.map((row) => [row.type, row.aggregate_version, row.payload.reason, row.payload.balance])).toEqual([
      ['platform.billing.balance.low_warning', 1, 'crossed', '1000'],
      ['platform.billing.balance.depleted', 2, 'crossed', '0'],
    ]);
    for (const row of rows) {
      expect(row.subject).toBe(`${subjectPrefix}.${row.type}`);
      const envelope = eventEnvelopeSchema.parse(outboxEnvelopeOf(row));
      expect(envelope).toMatchObject({ organizationId, occurredAt: t0.toISOString(), actor: { type: 'system' } });
      const parsed = parseEvent(envelope);
      expect(parsed.ok).toBe(true);
      expect(row.payload).toMatchObject({ organizationId, currency: 'USD', threshold: '1000', announcedAt: t0.toISOString() });
    }
    const state = await fixture.admin.query('SELECT low, depleted, version FROM balance_alerts WHERE organization_id = $1', [organizationId]);
    expect(state.rows).toEqual([{ low: true, depleted: true, version: 2 }]);
  });

  it('writes nothing, not even its row, while the balance stays above the threshold', async () => {
    const { organizationId } = await fixture.organization({ paid: 5000n });
    expect(await charge(organizationId, 100n, t0)).toEqual([]);
    const state = await fixture.admin.query('SELECT 1 FROM balance_alerts WHERE organization_id = $1', [organizationId]);
    expect(state.rowCount).toBe(0);
    expect(await announced(organizationId)).toEqual([]);
  });

  it('reminds once 24 h after the last warning while still low, however many charges race, and not again within 24 h', async () => {
    const { organizationId } = await fixture.organization({ paid: 2000n });
    await charge(organizationId, 1500n, t0);
    await charge(organizationId, 1n, at(23 * HOUR_MS));
    expect(await announced(organizationId)).toEqual(['low_warning:crossed']);

    await Promise.all(Array.from({ length: 10 }, () => charge(organizationId, 1n, at(LOW_WARNING_REPEAT_MS))));
    expect(await announced(organizationId)).toEqual(['low_warning:crossed', 'low_warning:still_low']);

    await charge(organizationId, 1n, at(LOW_WARNING_REPEAT_MS + 23 * HOUR_MS));
    expect(await announced(organizationId)).toEqual(['low_warning:crossed', 'low_warning:still_low']);
    await charge(organizationId, 1n, at(2 * LOW_WARNING_REPEAT_MS));
    expect(await announced(organizationId)).toEqual(['low_warning:crossed', 'low_warning:still_low', 'low_warning:still_low']);
  });

  it('serializes checks that run without a posting on the funds row themselves', async () => {
    const { organizationId } = await fixture.organization({ paid: 500n });
    const checks = await Promise.all(
      Array.from({ length: 10 }, () => inTransaction(fixture.database.pool, (tx) => alerts.checkIn(tx, organizationId, THRESHOLD, t0))),
    );
    expect(checks.flat()).toHaveLength(1);
    expect(await announced(organizationId)).toEqual(['low_warning:crossed']);
  });

  it('warns again when the balance went back above the threshold and then below it, within 24 h', async () => {
    const { organizationId } = await fixture.organization({ paid: 2000n });
    await charge(organizationId, 1500n, t0);
    expect(await credit(organizationId, 1000n, at(HOUR_MS))).toEqual([]);
    await charge(organizationId, 1000n, at(2 * HOUR_MS));
    const rows = await outboxRows(organizationId);
    expect(rows.map((row) => [row.payload.reason, row.payload.balance, row.aggregate_version])).toEqual([
      ['crossed', '500', 1],
      ['crossed', '500', 2],
    ]);
  });

  it('announces depletion once per crossing to zero or below', async () => {
    const { organizationId } = await fixture.organization({ paid: 1000n });
    const threshold = 100n;
    await charge(organizationId, 1000n, t0, threshold);
    await charge(organizationId, 100n, at(1_000), threshold);
    expect(await announced(organizationId)).toEqual(['low_warning:crossed', 'depleted:crossed']);

    // Back above zero but still low: depletion clears, the low warning stands.
    await credit(organizationId, 150n, at(2_000), threshold);
    await charge(organizationId, 60n, at(3_000), threshold);
    expect(await announced(organizationId)).toEqual(['low_warning:crossed', 'depleted:crossed', 'depleted:crossed']);

    // Above the threshold, then down past both in one charge.
    await credit(organizationId, 500n, at(4_000), threshold);
    await charge(organizationId, 500n, at(5_000), threshold);
    expect(await announced(organizationId)).toEqual([
      'low_warning:crossed',
      'depleted:crossed',
      'depleted:crossed',
      'low_warning:crossed',
      'depleted:crossed',
    ]);
    expect((await outboxRows(organizationId)).map((row) => row.payload.balance)).toEqual(['0', '0', '-10', '-10', '-10']);
  });

  it('counts promotional credit in the balance', async () => {
    const { organizationId } = await fixture.organization({ paid: 500n, promotional: 1000n });
    expect(await charge(organizationId, 400n, t0)).toEqual([]);
    await charge(organizationId, 200n, at(1_000));
    expect((await outboxRows(organizationId)).map((row) => row.payload.balance)).toEqual(['900']);
  });

  it('announces nothing from a transaction that rolls back; the next committed crossing does', async () => {
    const { organizationId } = await fixture.organization({ paid: 2000n });
    await expect(
      inTransaction(fixture.database.pool, async (tx) => {
        await fixture.ledger.chargeIn(tx, { postingId: `test:${randomUUID()}`, kind: 'usage', organizationId, amount: 1500n, actor: testActor });
        expect(await alerts.checkIn(tx, organizationId, THRESHOLD, t0)).toHaveLength(1);
        throw new Error('rating failed after the check');
      }),
    ).rejects.toThrow('rating failed after the check');
    expect(await announced(organizationId)).toEqual([]);
    await charge(organizationId, 1500n, at(1_000));
    expect(await announced(organizationId)).toEqual(['low_warning:crossed']);
  });

  describe('checked by the ledger after every posting that moves funds', () => {
    /** The time the observer checks at. */
    let now = t0;
    /** A ledger as services.ts builds it: every change of paid plus promotional checks alerts, with the stored thresholds. */
    let observed: Ledger;
    beforeAll(() => {
      observed = new Ledger(fixture.database.pool, new AccountDirectory(fixture.database.pool), {
        onFundsChanged: async (tx, organizationIds) => {
          await alerts.checkAllIn(tx, organizationIds.map((organizationId) => ({ organizationId, threshold: null })), now);
        },
      });
    });

    const observedCharge = (organizationId: string, amount: bigint) =>
      inTransaction(fixture.database.pool, (tx) => observed.chargeIn(tx, { postingId: `test:${randomUUID()}`, kind: 'usage', organizationId, amount, actor: testActor }));
    const topUp = (organizationId: string, amount: bigint) =>
      inTransaction(fixture.database.pool, (tx) =>
        observed.creditIn(tx, { postingId: `test:${randomUUID()}`, kind: 'top_up', organizationId, amount, to: 'customer_balance', from: 'payment_clearing', actor: testActor }),
      );

    it('announces depletion again after a top-up above zero and a charge below it (review finding)', async () => {
      const { organizationId } = await fixture.organization({ paid: 100n });
      now = t0;
      await observedCharge(organizationId, 150n);
      expect(await announced(organizationId)).toEqual(['low_warning:crossed', 'depleted:crossed']);
      now = at(1_000);
      await topUp(organizationId, 100n);
      const state = await fixture.admin.query('SELECT low, depleted FROM balance_alerts WHERE organization_id = $1', [organizationId]);
      expect(state.rows).toEqual([{ low: true, depleted: false }]);
      now = at(2_000);
      await observedCharge(organizationId, 60n);
      expect(await announced(organizationId)).toEqual(['low_warning:crossed', 'depleted:crossed', 'depleted:crossed']);
      expect((await outboxRows(organizationId)).map((row) => row.payload.balance)).toEqual(['-50', '-50', '-10']);
    });

    it('clears a low warning on a credit back above the threshold, so the next usage charge below announces a crossing', async () => {
      const { organizationId } = await fixture.organization({ paid: 2000n });
      now = t0;
      await observedCharge(organizationId, 1500n);
      now = at(HOUR_MS);
      await topUp(organizationId, 1000n);
      expect(await announced(organizationId)).toEqual(['low_warning:crossed']);
      // The usage charge checks as rating does, with the threshold its usage brought, after the observer did with the stored one.
      now = at(2 * HOUR_MS);
      const written = await inTransaction(fixture.database.pool, async (tx) => {
        await observed.chargeIn(tx, { postingId: `test:${randomUUID()}`, kind: 'usage', organizationId, amount: 1000n, actor: testActor });
        return alerts.checkAllIn(tx, [{ organizationId, threshold: THRESHOLD }], now);
      });
      expect(written).toEqual([]);
      expect((await outboxRows(organizationId)).map((row) => [row.payload.reason, row.payload.balance, row.aggregate_version])).toEqual([
        ['crossed', '500', 1],
        ['crossed', '500', 2],
      ]);
    });

    it('never warns under a stale threshold when rating posts usage that brought a lower one', async () => {
      const { organizationId, departmentId, projectId } = await fixture.organization({ paid: 800n });
      const rating = new UsageRating(fixture.database.pool, observed, { balanceAlerts: alerts, clock: new ManualClock(t0.getTime()) });
      now = t0;
      // 50 minor units of usage ingested under a threshold of 100: the balance (750) stays above it.
      const usage = pointEvent({ organizationId, departmentId, projectId }, snapshotPrice('50'), 1n, t0, { lowBalanceThreshold: 100n });
      await rating.rateBatch((await insertBatch(fixture.admin, [usage])).batchId);
      expect(await announced(organizationId)).toEqual([]);
      const stored = await fixture.admin.query('SELECT threshold::text AS threshold, low FROM balance_alerts WHERE organization_id = $1', [organizationId]);
      expect(stored.rows).toEqual([{ threshold: '100', low: false }]);
    });

    it('checks postings without usage against the threshold usage last brought', async () => {
      const { organizationId } = await fixture.organization({ paid: 5000n });
      now = t0;
      // Usage brought 3000: nothing to announce, but the row keeps the threshold.
      expect(await inTransaction(fixture.database.pool, (tx) => alerts.checkAllIn(tx, [{ organizationId, threshold: 3000n }], now))).toEqual([]);
      const stored = await fixture.admin.query('SELECT threshold::text AS threshold, version FROM balance_alerts WHERE organization_id = $1', [organizationId]);
      expect(stored.rows).toEqual([{ threshold: '3000', version: 0 }]);
      await observedCharge(organizationId, 2500n);
      expect((await outboxRows(organizationId)).map((row) => [row.payload.reason, row.payload.balance, row.payload.threshold])).toEqual([['crossed', '2500', '3000']]);
    });
  });

  it('checks several organizations at once, announcing each crossing once', async () => {
    const low = await fixture.organization({ paid: 500n });
    const empty = await fixture.organization();
    const rich = await fixture.organization({ paid: 5000n });
    const checks = [
      { organizationId: rich.organizationId, threshold: null },
      { organizationId: low.organizationId, threshold: null },
      { organizationId: empty.organizationId, threshold: THRESHOLD },
      { organizationId: low.organizationId, threshold: THRESHOLD },
    ];
    const written = await inTransaction(fixture.database.pool, (tx) => alerts.checkAllIn(tx, checks, t0));
    expect(written).toHaveLength(3);
    expect(await announced(low.organizationId)).toEqual(['low_warning:crossed']);
    expect(await announced(empty.organizationId)).toEqual(['low_warning:crossed', 'depleted:crossed']);
    expect(await announced(rich.organizationId)).toEqual([]);
    // Again, in one transaction twice and then concurrently: nothing new.
    expect(
      await inTransaction(fixture.database.pool, async (tx) => [...(await alerts.checkAllIn(tx, checks, at(1_000))), ...(await alerts.checkAllIn(tx, checks, at(1_000)))]),
    ).toEqual([]);
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => inTransaction(fixture.database.pool, (tx) => alerts.checkAllIn(tx, [...checks].reverse(), at(2_000)))));
    expect(concurrent.flat()).toEqual([]);
    const rows = await fixture.admin.query('SELECT 1 FROM balance_alerts WHERE organization_id = $1', [rich.organizationId]);
    expect(rows.rowCount).toBe(0);
  });

  it('refuses an organization billing has no funds for', async () => {
    await expect(inTransaction(fixture.database.pool, (tx) => alerts.checkIn(tx, randomUUID(), THRESHOLD, t0))).rejects.toMatchObject({
      code: 'BILLING_ORGANIZATION_UNKNOWN',
    });
  });
});
