/** Starts a node:http server on a loopback address (port 0 = ephemeral) and knows how to stop it. */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  server: Server;
  /** `http://host:port`, with the port actually bound. */
  origin: string;
  /** Replaces the request listener (used when a server must know its own URL before it is configured). */
  setHandler(handler: RequestListener): void;
  close(): Promise<void>;
}

export async function listen(host: string, port: number, handler?: RequestListener): Promise<Listening> {
  let current: RequestListener = handler ?? ((_req, res) => {
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('starting');
  });
  const server = createServer((req, res) => current(req, res));
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return {
    server,
    origin: `http://${hostPart}:${bound}`,
    setHandler(h) {
      current = h;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      }),
  };
}
