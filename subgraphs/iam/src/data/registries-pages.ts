import { z } from 'zod';
import { AppError, parseInput } from '@aifactory/errors';
// Registry and policy lists page like iam's other lists (same sizes), keyed by their text ids instead of (createdAt, id).
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../domain/pagination.js';

/** A keyset page request: rows strictly after `afterKey` in the list's order, at most `limit` of them. */
export interface KeysetPage {
  limit: number;
  afterKey: string | null;
}

/** One page of a list, one row beyond it read to know whether another page follows. */
export interface Page<T> {
  nodes: T[];
  hasNextPage: boolean;
}

const pageArgsSchema = z.object({
  first: z.number().int().min(1).max(MAX_PAGE_SIZE).nullish(),
  after: z.string().max(1024).nullish(),
});

/**
 * Cursors are opaque to clients: the last row's sort key, base64url-encoded
 * in an envelope so a cursor from elsewhere is refused rather than misread.
 */
export function encodeCursor(key: string): string {
  return Buffer.from(JSON.stringify({ k: key }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const parsed = z.object({ k: z.string() }).safeParse(decoded);
    if (parsed.success) return parsed.data.k;
  } catch {
    // Falls through to the one refusal below: any undecodable cursor is the client's error.
  }
  throw new AppError('BAD_REQUEST_INVALID_INPUT', 'after is not a cursor this list returned');
}

/** Reads Relay's `first`/`after` arguments. */
export function keysetPage(args: { first?: number | null; after?: string | null }): KeysetPage {
  const valid = parseInput(pageArgsSchema, { first: args.first, after: args.after });
  return { limit: valid.first ?? DEFAULT_PAGE_SIZE, afterKey: valid.after == null ? null : decodeCursor(valid.after) };
}

/** Trims the extra row a query read past the page (it asks for `limit + 1`). */
export function pageOf<T>(rows: T[], page: KeysetPage): Page<T> {
  return { nodes: rows.slice(0, page.limit), hasNextPage: rows.length > page.limit };
}

/** A Relay connection of the page (PageInfo in schema/00-schema.graphql); each edge's cursor is its row's sort key. */
export function connectionOf<T>(page: Page<T>, keyOf: (node: T) => string) {
  const edges = page.nodes.map((node) => ({ node, cursor: encodeCursor(keyOf(node)) }));
  return { edges, pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
}
