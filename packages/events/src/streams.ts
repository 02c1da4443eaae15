import type { StreamDeclaration } from '@aifactory/contracts';
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';

export type StreamChange = 'created' | 'updated' | 'unchanged';

export interface EnsuredStream {
  name: string;
  change: StreamChange;
}

/** JetStream's answer when a concurrent start created the stream between our look and our add. */
const STREAM_NAME_IN_USE = 10058;

/**
 * Creates every declared stream that is missing and brings an existing one's
 * limits in line with its declaration. Safe to run from every service at
 * every start: a second run changes nothing.
 */
export async function ensureStreams(jsm: JetStreamManager, declarations: readonly StreamDeclaration[]): Promise<EnsuredStream[]> {
  const results: EnsuredStream[] = [];
  for (const declaration of declarations) {
    results.push({ name: declaration.name, change: await ensureStream(jsm, declaration) });
  }
  return results;
}

async function ensureStream(jsm: JetStreamManager, declaration: StreamDeclaration): Promise<StreamChange> {
  const wanted = streamConfigOf(declaration);
  let current = await existingStream(jsm, declaration.name);
  if (current === undefined) {
    try {
      await jsm.streams.add(wanted);
      return 'created';
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === STREAM_NAME_IN_USE)) throw error;
      current = await existingStream(jsm, declaration.name);
      if (current === undefined) throw error;
    }
  }
  if (sameLimits(current, wanted)) return 'unchanged';
  await jsm.streams.update(declaration.name, wanted);
  return 'updated';
}

async function existingStream(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw error;
  }
}

function streamConfigOf(declaration: StreamDeclaration): Partial<StreamConfig> & { name: string } {
  return {
    name: declaration.name,
    description: declaration.description,
    subjects: [...declaration.subjects],
    retention: RETENTION[declaration.retention],
    storage: STORAGE[declaration.storage],
    num_replicas: declaration.replicas,
    discard: DISCARD[declaration.discard],
    max_age: nanos(declaration.maxAgeMs),
    max_bytes: declaration.maxBytes,
    max_msg_size: declaration.maxMessageBytes,
    duplicate_window: nanos(declaration.duplicateWindowMs),
  };
}

const RETENTION = { limits: RetentionPolicy.Limits } as const;
const STORAGE = { file: StorageType.File } as const;
const DISCARD = { old: DiscardPolicy.Old } as const;

/** Compares what a declaration controls; anything else on the stream is left as the server has it. */
function sameLimits(current: StreamInfo, wanted: Partial<StreamConfig>): boolean {
  const config = current.config;
  return (
    config.description === wanted.description &&
    sameSet(config.subjects ?? [], wanted.subjects ?? []) &&
    config.retention === wanted.retention &&
    config.storage === wanted.storage &&
    config.num_replicas === wanted.num_replicas &&
    config.discard === wanted.discard &&
    config.max_age === wanted.max_age &&
    config.max_bytes === wanted.max_bytes &&
    config.max_msg_size === wanted.max_msg_size &&
    config.duplicate_window === wanted.duplicate_window
  );
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
}
