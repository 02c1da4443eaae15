import { AppError } from '@aifactory/errors';
import { emptyConnection, keysetConnection, pageSize, type Connection } from '@aifactory/subgraph-kit';

/**
 * Keyset pages over a strictly increasing position: a ledger row's `seq`, a
 * price book's version, a project id. Oldest (lowest) first, like every list
 * of the platform, so rows written while a client pages land on later pages
 * and never shift the ones it has read.
 */
export interface PageRequest {
  first: number;
  /** The position of the last row of the previous page; null for the first page. */
  after: string | null;
}

export { emptyConnection, type Connection };

/** What a cursor of one list holds; a cursor of another list is refused rather than misread. */
export type CursorKind = 'seq' | 'version' | 'id';

const POSITION: Record<CursorKind, RegExp> = {
  seq: /^[1-9][0-9]{0,18}$/,
  version: /^[1-9][0-9]{0,9}$/,
  id: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
};

/** Opaque to clients: base64url of `<kind>:<position>`; only this module reads it. */
export function encodeCursor(kind: CursorKind, position: string): string {
  return Buffer.from(`${kind}:${position}`, 'utf8').toString('base64url');
}

function decodeCursor(kind: CursorKind, text: string): string {
  const decoded = Buffer.from(text, 'base64url').toString('utf8');
  const position = decoded.startsWith(`${kind}:`) ? decoded.slice(kind.length + 1) : '';
  if (!POSITION[kind].test(position)) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', 'The cursor is not one this list returned', { details: { field: 'after' } });
  }
  return position;
}

/** Validates the GraphQL `first`/`after` arguments of a list. */
export function pageRequest(kind: CursorKind, args: { first?: number | null; after?: string | null }): PageRequest {
  return { first: pageSize(args.first), after: args.after ? decodeCursor(kind, args.after) : null };
}

/** Rows were fetched with `LIMIT first + 1` in position order: the extra row only says whether another page exists. */
export function connectionOf<T>(kind: CursorKind, rows: readonly T[], page: PageRequest, positionOf: (row: T) => string): Connection<T> {
  return keysetConnection(rows, page.first, (row) => encodeCursor(kind, positionOf(row)));
}
