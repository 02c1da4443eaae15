import { AppError } from '@aifactory/errors';

/**
 * Keyset pagination as every subgraph's lists page (a Relay-style
 * connection): oldest first, so rows written while a client pages land on
 * later pages and never shift the ones it has read. Each subgraph keeps its
 * own cursor codec; these are the parts they share.
 */
export interface Connection<T> {
  edges: Array<{ cursor: string; node: T }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** Validates a list's GraphQL `first` argument; left out, the default page size. */
export function pageSize(first: number | null | undefined): number {
  const size = first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', `first must be between 1 and ${MAX_PAGE_SIZE}`, { details: { field: 'first' } });
  }
  return size;
}

/** Rows were fetched with a limit of `first + 1` in cursor order: the extra row only says whether another page exists. */
export function connectionOf<T>(rows: readonly T[], first: number, cursorOf: (row: T) => string): Connection<T> {
  const edges = rows.slice(0, first).map((node) => ({ cursor: cursorOf(node), node }));
  return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
}

export function emptyConnection<T>(): Connection<T> {
  return { edges: [], pageInfo: { hasNextPage: false, endCursor: null } };
}
