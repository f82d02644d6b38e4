/** Listening and graceful shutdown: stop accepting, let in-flight requests finish, then close. */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Logger } from '../log.js';

export interface RunningServer {
  server: Server;
  url: string;
  /** Installs the request handler; until then every request is answered 503 (starting). */
  setHandler(handler: RequestListener): void;
  /** Stops accepting connections, waits up to graceMs for in-flight requests, then destroys what is left. */
  close(graceMs: number): Promise<void>;
}

export async function listen(app: Express, host: string, port: number, log: Logger): Promise<RunningServer> {
  const running = await bind(host, port, log);
  running.setHandler(app);
  return running;
}

/** Binds the port before the app exists (its public URL may depend on the port chosen). */
export async function bind(host: string, port: number, log: Logger): Promise<RunningServer> {
  let handler: RequestListener = (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"status":"starting"}');
  };
  const server = createServer((req, res) => handler(req, res));
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 10 * 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  let closing: Promise<void> | null = null;
  return {
    server,
    url,
    setHandler(h) {
      handler = h;
    },
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        log.info({ graceMs }, 'shutting down: no new connections, finishing in-flight requests');
        const timer = setTimeout(() => {
          log.warn('grace period over: closing remaining connections');
          server.closeAllConnections();
        }, graceMs);
        timer.unref();
        // Connections become idle once their in-flight response is written: close them as they do.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        sweep.unref();
        server.close(() => {
          clearTimeout(timer);
          clearInterval(sweep);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
