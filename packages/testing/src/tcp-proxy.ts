import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface TcpProxy {
  /** The port the proxy listens on (127.0.0.1). */
  port: number;
  /** `<scheme>://127.0.0.1:<port>` when a scheme was given (e.g. `nats`). */
  url: string | undefined;
  /** Connections passing through now. */
  readonly connections: number;
  /** Destroys every open connection and refuses new ones until `restore()`: a network cut. */
  cut(): void;
  /** Accepts connections again. */
  restore(): void;
  close(): Promise<void>;
}

export interface TcpProxyOptions {
  /** Gives the proxy a `url` with this scheme. */
  scheme?: string;
}

/**
 * A TCP proxy on 127.0.0.1 for tests that need to cut a service off from a
 * backing server and give it back (a gateway losing NATS): bytes pass
 * through untouched; `cut()` breaks every connection at once and refuses
 * new ones (the client's reconnects fail as on a dead network) until
 * `restore()`.
 */
export async function startTcpProxy(targetHost: string, targetPort: number, options: TcpProxyOptions = {}): Promise<TcpProxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  let isCut = false;
  const breakAll = () => {
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  const server = createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: targetHost, port: targetPort });
    const pair = { client, upstream };
    pairs.add(pair);
    // Either side ending or failing ends both: a half-open pair would leave the client waiting on nothing.
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: options.scheme === undefined ? undefined : `${options.scheme}://127.0.0.1:${port}`,
    get connections() {
      return pairs.size;
    },
    cut: () => {
      isCut = true;
      breakAll();
    },
    restore: () => {
      isCut = false;
    },
    close: async () => {
      isCut = true;
      breakAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
