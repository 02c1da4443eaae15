import type { IncomingMessage } from 'node:http';
import { AppError } from '@aifactory/errors';
import { isJsonContentType } from '@aifactory/http';

/** Content types a browser may send cross-site without a CORS preflight. */
const SIMPLE_CONTENT_TYPES = new Set(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data']);
const PREFLIGHT_HEADERS = ['x-apollo-operation-name', 'apollo-require-preflight'];

/**
 * Apollo Server's CSRF prevention, kept at this edge: a request a browser
 * could send from another site without a preflight (no content type, or a
 * "simple" one, and none of Apollo's preflight headers) is refused before it
 * is read. Operations are then only ever accepted as JSON, so every allowed
 * cross-site call has passed the CORS preflight.
 */
export function requireJsonPost(req: IncomingMessage): void {
  const contentType = req.headers['content-type'];
  if (isJsonContentType(contentType)) return;
  const mediaType = contentType?.split(';', 1)[0]?.trim().toLowerCase();
  const preflighted = PREFLIGHT_HEADERS.some((name) => typeof req.headers[name] === 'string' && req.headers[name] !== '');
  if (!preflighted && (mediaType === undefined || mediaType === '' || SIMPLE_CONTENT_TYPES.has(mediaType))) {
    throw new AppError(
      'BAD_REQUEST_CSRF_PREFLIGHT_REQUIRED',
      'This request could be a cross-site request forgery: send Content-Type: application/json',
    );
  }
  throw new AppError('BAD_REQUEST_UNSUPPORTED_CONTENT_TYPE', 'Content-Type must be application/json');
}
