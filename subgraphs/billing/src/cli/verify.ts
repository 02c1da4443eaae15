import { loadConfigOrExit } from '@aifactory/config';
import { databaseConfigSchema } from '@aifactory/subgraph-kit';
import { openBillingDatabase } from '../data/database.js';
import { checkLedger, describeMismatch } from '../domain/ledger-check.js';
import { BillingStatus } from '../domain/service-status.js';

// `npm run billing:verify`: proves the balance read model against the ledger
// now, prints the verdict as JSON, names every mismatch on stderr and exits 1
// if there is any. Like the scheduled check, it records the check and turns
// billing's status degraded (or back to operational) with its event.
const config = loadConfigOrExit(databaseConfigSchema, 'billing:verify');
const database = openBillingDatabase(config);
try {
  const check = await checkLedger(database.pool, { trigger: 'verify' });
  const { status } = await new BillingStatus(database.pool, { subjectPrefix: config.EVENT_SUBJECT_PREFIX }).applyLedgerCheck(check, {
    type: 'system',
    id: 'billing.verify',
  });
  const report = {
    ok: check.ok,
    checkId: check.id,
    asOf: check.startedAt.toISOString(),
    mismatches: check.mismatches,
    status: { status: status.status, reason: status.reason, version: status.version },
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  if (!check.ok) {
    for (const mismatch of check.mismatches) process.stderr.write(`billing:verify: ${describeMismatch(mismatch)}\n`);
    process.exitCode = 1;
  }
} catch (error) {
  // Not a verdict: exit 2 tells "could not check" apart from "mismatches found".
  process.stderr.write(`billing:verify: could not check the ledger: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
} finally {
  await database.close();
}
