import { AppError } from '@aifactory/errors';
import { DEFAULT_PAGE_SIZE, emptyConnection, keysetConnection, MAX_PAGE_SIZE, pageSize, type Connection } from '@aifactory/subgraph-kit';

/** Keyset position: the (createdAt, id) of the last row a page returned. */
export interface Cursor {
  createdAt: Date;
  id: string;
}

export interface PageRequest {
  first: number;
  after: Cursor | null;
}

export { DEFAULT_PAGE_SIZE, emptyConnection, MAX_PAGE_SIZE, type Connection };

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
  return { first: pageSize(args.first), after: args.after ? decodeCursor(args.after) : null };
}

/** Rows were fetched with `take: first + 1`, oldest first: the extra row only says whether another page exists. */
export function connectionOf<T extends Cursor>(rows: readonly T[], page: PageRequest): Connection<T> {
  return keysetConnection(rows, page.first, encodeCursor);
}
