import type { IncomingMessage } from 'node:http';
import { clientAddress } from './client-address.js';

function request(peer: string, forwardedFor?: string): Pick<IncomingMessage, 'headers' | 'socket'> {
  return { headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }, socket: { remoteAddress: peer } as IncomingMessage['socket'] };
}

describe('the client address for limits per source', () => {
  it('is the socket peer when no proxy is trusted, whatever X-Forwarded-For claims', () => {
    expect(clientAddress(request('203.0.113.9', '10.0.0.1'), 0)).toBe('203.0.113.9');
  });

  it('is the entry the trusted proxies appended, never one the client wrote', () => {
    expect(clientAddress(request('10.0.0.2', '1.1.1.1, 198.51.100.4'), 1)).toBe('198.51.100.4');
    expect(clientAddress(request('10.0.0.2', '1.1.1.1, 198.51.100.4, 10.0.0.1'), 2)).toBe('198.51.100.4');
  });

  it('falls back to the peer when the request carries fewer hops than trusted', () => {
    expect(clientAddress(request('10.0.0.2'), 1)).toBe('10.0.0.2');
    expect(clientAddress(request('10.0.0.2', '198.51.100.4'), 2)).toBe('10.0.0.2');
  });
});
