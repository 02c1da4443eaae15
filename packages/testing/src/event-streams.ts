import { randomBytes } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

/** The shared NATS; tests on it publish under their own subject prefix and delete their streams. */
export const TEST_NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/**
 * An EVENT_SUBJECT_PREFIX no other run has: subjects become `<prefix>.<subject>`
 * and stream names `<PREFIX>_<NAME>` (contracts' streamDeclarations).
 */
export function uniqueEventSubjectPrefix(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

/** The stream names a prefix gives, as streamDeclarations({ subjectPrefix }) builds them. */
function streamNamePrefix(subjectPrefix: string): string {
  return `${subjectPrefix.toUpperCase()}_`;
}

/** The names of the streams on the shared NATS that carry this run's prefix. */
export async function eventStreamsWithPrefix(subjectPrefix: string, natsUrl = TEST_NATS_URL): Promise<string[]> {
  const nc = await connect({ servers: natsUrl, name: 'aifactory-test-streams' });
  try {
    return await namesWithPrefix(await jetstreamManager(nc), subjectPrefix);
  } finally {
    await nc.close();
  }
}

/**
 * Deletes the streams this run declared on the shared NATS, and only those:
 * every other stream (the dev stack's, other runs') is left alone.
 */
export async function deleteEventStreams(subjectPrefix: string, natsUrl = TEST_NATS_URL): Promise<string[]> {
  if (subjectPrefix === '') throw new RangeError('refusing to delete streams without a test prefix');
  const nc = await connect({ servers: natsUrl, name: 'aifactory-test-streams' });
  try {
    const jsm = await jetstreamManager(nc);
    // Listed in full first: deleting while the lister pages would shift its offsets.
    const names = await namesWithPrefix(jsm, subjectPrefix);
    for (const name of names) await jsm.streams.delete(name);
    return names;
  } finally {
    await nc.close();
  }
}

async function namesWithPrefix(jsm: JetStreamManager, subjectPrefix: string): Promise<string[]> {
  const names: string[] = [];
  const prefix = streamNamePrefix(subjectPrefix);
  // KV buckets (IAM's access read model) are streams named `KV_<bucket>`, and a test's buckets carry its prefix too.
  for await (const name of jsm.streams.names()) if (name.startsWith(prefix) || name.startsWith(`KV_${prefix}`)) names.push(name);
  return names;
}
