import WebSocket from 'ws';

/**
 * A `ws` WebSocket class whose upgrade request carries these headers, as a
 * program's (an API key) or Pomerium's (the assertion) would: graphql-ws
 * takes a class, not options. `onCreate` hands out each socket it opens.
 */
export type WebSocketClass = new (address: string, protocols?: string | string[]) => WebSocket;

export function webSocketWithHeaders(headers: Record<string, string>, onCreate?: (socket: WebSocket) => void): WebSocketClass {
  return class extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers });
      onCreate?.(this);
    }
  };
}
