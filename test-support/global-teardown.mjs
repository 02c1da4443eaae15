import { rmSync } from 'node:fs';

export default async function globalTeardown() {
  const state = globalThis.__aifConnectionSampler;
  if (state) {
    state.running = false;
    await state.done;
    await state.client.end();
    process.stdout.write(`\nPostgres client connections at the peak of this run: ${state.peak} (${state.samples} samples)\n`);
    rmSync(state.file, { force: true });
  }
  const summary = globalThis.__aifTestSummary;
  if (summary) process.stdout.write(`Tests: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped\n`);
}
