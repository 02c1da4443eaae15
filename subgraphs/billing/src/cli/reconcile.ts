import { parseArgs } from 'node:util';
import { loadConfigOrExit, z } from '@aifactory/config';
import { databaseConfigSchema } from '@aifactory/subgraph-kit';
import { billingConfigSchema } from '../config.js';
import { openBillingDatabase } from '../data/database.js';
import { UsageReconciliationStore, type SavedWindow } from '../data/usage-reconciliation-store.js';
import { BalanceAlerts } from '../domain/balance-alerts.js';
import { alertingLedger } from '../domain/alerting-ledger.js';
import { UsageDriftStatus } from '../domain/usage-drift-status.js';
import { UsageRating } from '../domain/usage-rating.js';
import { UsageReconciliation } from '../domain/usage-reconciliation.js';

/**
 * `npm run billing:reconcile -- --from <ISO instant> --to <ISO instant>`:
 * rates accepted usage of [from, to) that is still unrated (as its rating
 * job would have), then counts every reconciliation window overlapping the
 * span again and prints the ones that drift. Exit 0 when none does, 1 when
 * some still drift, 2 when it could not reconcile. It never changes a rated
 * line or a posting; like the periodic round it turns billing's status
 * degraded or back.
 */
const USAGE = 'usage: npm run billing:reconcile -- --from <ISO-8601 instant> --to <ISO-8601 instant>\n';
const ACTOR = { type: 'system' as const, id: 'billing.reconcile' };
const instant = z.iso.datetime({ offset: true }).transform((text) => new Date(text));
/** The drift table's columns: counts are events/base units. */
const COLUMNS: ReadonlyArray<[string, (window: SavedWindow) => string]> = [
  ['product', (w) => w.product],
  ['organization', (w) => w.organizationId],
  ['unit', (w) => w.unitId],
  ['window start', (w) => w.windowStart.toISOString()],
  ['window end', (w) => w.windowEnd.toISOString()],
  ['reported', (w) => (w.reportedCount === null ? '-' : `${w.reportedCount}/${w.reportedQuantity}`)],
  ['ingested', (w) => `${w.ingestedCount}/${w.ingestedQuantity}`],
  ['rated', (w) => String(w.ratedCount)],
  ['posted', (w) => String(w.postedCount)],
  ['drift', (w) => w.driftReasons.join(',')],
];

const config = loadConfigOrExit(databaseConfigSchema.extend(billingConfigSchema.pick({ BILLING_RECONCILE_GRACE_MS: true }).shape), 'billing:reconcile');
const span = parsedSpan();
if (span === undefined) {
  process.stderr.write(USAGE);
  process.exitCode = 2;
} else {
  process.exitCode = await reconcile(span.from, span.to);
}

function parsedSpan(): { from: Date; to: Date } | undefined {
  try {
    const { values } = parseArgs({ options: { from: { type: 'string' }, to: { type: 'string' } }, strict: true });
    const from = instant.safeParse(values.from);
    const to = instant.safeParse(values.to);
    if (!from.success || !to.success || from.data >= to.data) return undefined;
    return { from: from.data, to: to.data };
  } catch {
    return undefined;
  }
}

async function reconcile(from: Date, to: Date): Promise<number> {
  const database = openBillingDatabase(config);
  try {
    const store = new UsageReconciliationStore(database.pool);
    const status = new UsageDriftStatus(database.pool, store, { subjectPrefix: config.EVENT_SUBJECT_PREFIX });
    const reconciliation = new UsageReconciliation(store, status, { graceMs: config.BILLING_RECONCILE_GRACE_MS });
    const balanceAlerts = new BalanceAlerts({ subjectPrefix: config.EVENT_SUBJECT_PREFIX });
    const rating = new UsageRating(database.pool, alertingLedger(database.pool, balanceAlerts), { balanceAlerts });
    try {
      const rated = await rating.rateUnrated(from, to);
      process.stdout.write(`rated ${rated.events} unrated usage events of ${rated.batches} batches\n`);
    } catch (error) {
      // What could be rated was; the windows still unrated show as drift below.
      process.stderr.write(`billing:reconcile: rating failed for some usage: ${messageOf(error)}\n`);
    }
    const round = await reconciliation.reconcileSpan(from, to, ACTOR);
    const drifting = round.windows.filter((window) => window.drift);
    process.stdout.write(
      `${round.windows.length} windows of ${from.toISOString()} .. ${to.toISOString()} ended by ${round.judgedUntil.toISOString()}: ` +
        `${round.windows.length - drifting.length} clean, ${drifting.length} drifting; billing is ${round.status.status}\n`,
    );
    if (drifting.length > 0) process.stdout.write(driftTable(drifting));
    return drifting.length > 0 ? 1 : 0;
  } catch (error) {
    process.stderr.write(`billing:reconcile: could not reconcile: ${messageOf(error)}\n`);
    return 2;
  } finally {
    await database.close();
  }
}

/** The drifting windows, one per line, in aligned columns. */
function driftTable(windows: readonly SavedWindow[]): string {
  const rows = [COLUMNS.map(([name]) => name), ...windows.map((window) => COLUMNS.map(([, value]) => value(window)))];
  const widths = COLUMNS.map((_, index) => Math.max(...rows.map((row) => row[index]!.length)));
  return rows.map((row) => row.map((cell, index) => cell.padEnd(widths[index]!)).join('  ').trimEnd()).join('\n') + '\n';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
