import type { IncomingMessage } from 'node:http';
import { AppError } from '@aifactory/errors';

export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) throw bodyTooLarge(limitBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limitBytes) throw bodyTooLarge(limitBytes);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks, size);
}

function bodyTooLarge(limitBytes: number): AppError {
  return new AppError('BAD_REQUEST_BODY_TOO_LARGE', `Request body exceeds ${limitBytes} bytes`);
}

export function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const mediaType = header.split(';', 1)[0]?.trim().toLowerCase();
  return mediaType === 'application/json' || mediaType === 'application/graphql-response+json';
}

export function parseJsonBody(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch (error) {
    throw new AppError('BAD_REQUEST_MALFORMED_JSON', 'Request body is not valid JSON', { cause: error });
  }
}
