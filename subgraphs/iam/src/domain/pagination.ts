import { AppError } from '@aifactory/errors';

/** Keyset position: the (createdAt, id) of the last row a page returned. */
export interface Cursor {
  createdAt: Date;
  id: string;
}

export interface PageRequest {
  first: number;
  after: Cursor | null;
}

export interface Connection<T> {
  edges: Array<{ cursor: string; node: T }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** Opaque to clients: base64url of `<createdAt ISO>|<id>`; only this module reads it. */
export function encodeCursor(row: Cursor): string {
  return Buffer.from(`${row.createdAt.toISOString()}|${row.id}`, 'utf8').toString('base64url');
}

function decodeCursor(text: string): Cursor {
  const [at, id, ...rest] = Buffer.from(text, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(at ?? '');
  if (rest.length > 0 || !id || Number.isNaN(createdAt.getTime())) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', 'The cursor is not one this API returned', { details: { field: 'after' } });
  }
  return { createdAt, id };
}

/** Validates the GraphQL `first`/`after` arguments of a list. */
export function pageRequest(args: { first?: number | null; after?: string | null }): PageRequest {
  const first = args.first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', `first must be between 1 and ${MAX_PAGE_SIZE}`, { details: { field: 'first' } });
  }
  return { first, after: args.after ? decodeCursor(args.after) : null };
}

/** Rows were fetched with `take: first + 1`, oldest first: the extra row only says whether another page exists. */
export function connectionOf<T extends Cursor>(rows: readonly T[], page: PageRequest): Connection<T> {
  const nodes = rows.slice(0, page.first);
  const edges = nodes.map((node) => ({ cursor: encodeCursor(node), node }));
  return { edges, pageInfo: { hasNextPage: rows.length > page.first, endCursor: edges.at(-1)?.cursor ?? null } };
}

export function emptyConnection<T>(): Connection<T> {
  return { edges: [], pageInfo: { hasNextPage: false, endCursor: null } };
}
