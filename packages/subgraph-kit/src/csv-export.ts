import type { ServerResponse } from 'node:http';

/*
 * The CSV exports (billing's usage lines, evidence's audit log) share the
 * field escaping and the streaming, so a fix to either (a new formula
 * character, a client that goes away) reaches every export at once.
 */

// RFC 4180 ends records with CRLF.
export const CSV_RECORD_END = '\r\n';
/** A spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * One CSV field. Exported values carry what users and products typed, so no
 * value is trusted to be inert: a leading formula character gets an
 * apostrophe (unless the column is `numeric`: a negative number is written
 * as it is), and quotes, commas and line breaks are quoted per RFC 4180.
 */
export function csvField(value: string | null, numeric = false): string {
  if (value === null) return '';
  const inert = !numeric && FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(inert) ? `"${inert.replaceAll('"', '""')}"` : inert;
}

/**
 * True once the client has taken what was written (`drain`), false once it
 * went away: a `drain` that never comes must not hold the export, and its
 * database reads, open forever.
 */
function clientReady(res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onDrain = () => {
      res.off('close', onClose);
      resolve(true);
    };
    const onClose = () => {
      res.off('drain', onDrain);
      resolve(false);
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/**
 * Answers 200 with `chunks` as the CSV attachment `filename`, with
 * backpressure: the next chunk is read only once the client took the last,
 * and a client that went away stops the export (and its reads) with no end.
 * The first chunk is read before the status line, so a refusal or a
 * database that is down still gets a proper error answer.
 */
export async function streamCsv(res: ServerResponse, filename: string, chunks: AsyncIterable<string>): Promise<void> {
  const iterator = chunks[Symbol.asyncIterator]();
  let next = await iterator.next();
  res.writeHead(200, {
    'content-type': 'text/csv; charset=utf-8',
    'content-disposition': `attachment; filename="${filename}"`,
    'cache-control': 'no-store',
  });
  for (; !next.done; next = await iterator.next()) {
    if (!res.write(next.value) && !(await clientReady(res))) {
      await iterator.return?.();
      return;
    }
  }
  res.end();
}
