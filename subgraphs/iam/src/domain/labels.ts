import { z } from 'zod';
import { labelSchema, type Label } from '@aifactory/contracts';

export type { Label };

export const MAX_LABELS = 20;

/**
 * Labels of a service account or key: `key` lowercase (letters, digits,
 * `_`, `.`, `-`), `value` up to 256 characters, each key once. They are for
 * people and tooling; nothing authorizes on them.
 */
export const labelsSchema = z
  .array(labelSchema)
  .max(MAX_LABELS)
  .refine((labels) => new Set(labels.map((label) => label.key)).size === labels.length, 'must name each key once')
  .transform((labels) => [...labels].sort((a, b) => a.key.localeCompare(b.key)));

/** A stored labels column as the contract's shape; the domain only ever writes valid lists. */
export function labelsOf(stored: unknown): Label[] {
  return z.array(labelSchema).parse(stored);
}
