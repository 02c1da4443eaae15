// Samples Postgres's client connections for the whole test run, so the
// connection-budget test (run last) can check the peak against the budget
// the README documents. Runs in jest's parent process.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

const SAMPLE_EVERY_MS = 100;

export default async function globalSetup() {
  const file = path.join(tmpdir(), `aif-connection-peak-${process.pid}.json`);
  process.env.AIF_CONNECTION_PEAK_FILE = file;
  const client = new pg.Client({
    connectionString: process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    application_name: 'aifactory-connection-sampler',
  });
  await client.connect();
  const state = { peak: 0, samples: 0, running: true, client, file };
  const loop = async () => {
    while (state.running) {
      const { rows } = await client.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'",
      );
      state.peak = Math.max(state.peak, rows[0].n);
      state.samples += 1;
      writeFileSync(file, JSON.stringify({ peak: state.peak, samples: state.samples }));
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
    }
  };
  state.done = loop();
  globalThis.__aifConnectionSampler = state;
}
