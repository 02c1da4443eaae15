import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/** Connects through the proxy and sends `text`; resolves with what came back before the socket closed, and whether it was cut. */
function exchange(port: number, text: string): Promise<{ reply: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setEncoding('utf8');
    socket.once('error', reject);
    socket.once('data', (data: string) => resolve({ reply: data, socket }));
    socket.once('close', () => resolve({ reply: '', socket }));
    socket.write(text);
  });
}

describe('the TCP proxy for cutting a service off in tests', () => {
  let echo: Server;
  let proxy: TcpProxy;

  beforeAll(async () => {
    echo = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    proxy = await startTcpProxy('127.0.0.1', (echo.address() as AddressInfo).port, { scheme: 'nats' });
  });

  afterAll(async () => {
    await proxy.close();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  it('passes bytes both ways and names itself with the scheme', async () => {
    const { reply, socket } = await exchange(proxy.port, 'ping');
    expect(reply).toBe('ping');
    expect(proxy.url).toBe(`nats://127.0.0.1:${proxy.port}`);
    expect(proxy.connections).toBe(1);
    socket.destroy();
  });

  it('breaks open connections on cut, refuses new ones, and passes again after restore', async () => {
    const { socket } = await exchange(proxy.port, 'before');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    proxy.cut();
    await closed;
    expect(proxy.connections).toBe(0);
    expect((await exchange(proxy.port, 'during')).reply).toBe('');
    proxy.restore();
    const after = await exchange(proxy.port, 'after');
    expect(after.reply).toBe('after');
    after.socket.destroy();
  });
});
