/**
 * A real HTTP server on 127.0.0.1 whose routes misbehave on purpose (hang, 5xx, 429, HTML, truncation,
 * huge bodies, redirects). Records every request it receives so tests can assert "never connected".
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

export interface ScriptedServer {
  readonly origin: string;
  readonly port: number;
  readonly seen: SeenRequest[];
  route(path: string, handler: RouteHandler): void;
  hits(path: string): number;
  close(): Promise<void>;
}

export async function startScriptedServer(): Promise<ScriptedServer> {
  const routes = new Map<string, RouteHandler>();
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const path = (req.url ?? '/').split('?')[0];
      const handler = routes.get(path);
      if (!handler) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no route');
        return;
      }
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    seen,
    route: (path, handler) => void routes.set(path, handler),
    hits: (path) => seen.filter((s) => s.url.split('?')[0] === path).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function json(res: http.ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/fhir+json', 'content-length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}
