import type { IncomingMessage } from 'node:http';

/**
 * The address a request came from, for limits per source. Behind proxies the
 * socket's peer is the last proxy, so every client would share one budget;
 * each trusted proxy appends the address it saw to X-Forwarded-For, so the
 * client is the entry `trustedHops` from the right. Entries further left were
 * written by the client itself and are never believed.
 */
export function clientAddress(req: Pick<IncomingMessage, 'headers' | 'socket'>, trustedHops: number): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (trustedHops <= 0) return peer;
  const header = req.headers['x-forwarded-for'];
  const entries = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  // Fewer entries than trusted proxies: the request skipped a proxy, so the peer is the best we know.
  return entries[entries.length - trustedHops] ?? peer;
}
