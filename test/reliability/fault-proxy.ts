/**
 * A loopback HTTP proxy in front of a real server (the sandbox FHIR or authorization server) whose
 * behaviour a test switches while traffic flows: pass, slow (each answer delayed), 500 (an
 * OperationOutcome), down (the connection is reset, as a crashed server). JSON answers have the real
 * server's origin rewritten to the proxy's, so links (Bundle.link, fullUrl, token endpoints) stay on it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FaultMode = 'pass' | 'slow' | '500' | 'down';

export interface FaultProxy {
  origin: string;
  target: string | undefined;
  mode: FaultMode;
  delayMs: number;
  /** Requests seen per mode. */
  seen: Record<FaultMode, number>;
  close(): Promise<void>;
}

export async function startFaultProxy(): Promise<FaultProxy> {
  const state = { target: undefined as string | undefined, mode: 'pass' as FaultMode, delayMs: 0, seen: { pass: 0, slow: 0, '500': 0, down: 0 } };
  let origin = '';
  const server: Server = createServer((req, res) => {
    // A caller that gives up (its deadline) aborts the request: that is expected here, not an error.
    handle(req, res).catch(() => req.socket.destroy());
  });
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const mode = state.mode;
    state.seen[mode]++;
    if (mode === 'down' || !state.target) return void req.socket.destroy();
    if (mode === '500') {
      res.writeHead(500, { 'content-type': 'application/fhir+json' });
      return void res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] }));
    }
    if (mode === 'slow') await new Promise((r) => setTimeout(r, state.delayMs));
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k)) as [string, string][]);
    try {
      const up = await fetch(`${state.target}${req.url}`, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined, redirect: 'manual' });
      const type = up.headers.get('content-type') ?? '';
      let body: Buffer = Buffer.from(await up.arrayBuffer());
      if (/json/.test(type)) body = Buffer.from(body.toString('utf8').replaceAll(state.target, origin));
      const out: Record<string, string> = {};
      up.headers.forEach((v, k) => {
        if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(k)) out[k] = k === 'location' ? v.replaceAll(state.target!, origin) : v;
      });
      res.writeHead(up.status, out).end(body);
    } catch {
      if (!res.headersSent) res.writeHead(502).end();
    }
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const proxy: FaultProxy = {
    origin,
    get target() {
      return state.target;
    },
    set target(t) {
      state.target = t;
    },
    get mode() {
      return state.mode;
    },
    set mode(m) {
      state.mode = m;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(d) {
      state.delayMs = d;
    },
    seen: state.seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  return proxy;
}
