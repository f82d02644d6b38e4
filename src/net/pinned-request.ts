/**
 * One HTTP exchange to an address that was already checked: the socket connects to that IP (no second DNS
 * lookup, so no rebinding), the Host header and TLS SNI/certificate check use the original host name.
 * The body is streamed and the exchange stops as soon as the byte limit is passed or the signal fires.
 * This file and guarded-fetch.ts are the only users of node:http/https in the service.
 */
import http from 'node:http';
import https from 'node:https';
import { NetError } from './net-error.js';

export interface PinnedRequest {
  readonly url: URL;
  readonly address: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  readonly signal: AbortSignal;
  readonly maxBytes: number;
  readonly agents: { readonly http: http.Agent; readonly https: https.Agent };
  readonly ca?: string | Buffer;
  /** Distinguishes our own timeout from the caller's abort. */
  readonly isTimeout: () => boolean;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

function stripBrackets(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

export function sendPinned(req: PinnedRequest): Promise<RawResponse> {
  const { url, signal } = req;
  const origin = `${url.protocol}//${url.host}`;
  const abortError = () =>
    req.isTimeout()
      ? new NetError('timeout', origin, 'request timed out')
      : new NetError('aborted', origin, 'request aborted by caller');

  return new Promise<RawResponse>((resolve, reject) => {
    if (signal.aborted) return reject(abortError());
    let settled = false;
    const finish = (err: Error | undefined, value?: RawResponse) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(value as RawResponse);
    };
    const isHttps = url.protocol === 'https:';
    const hostname = stripBrackets(url.hostname);
    const options: https.RequestOptions = {
      host: req.address,
      port: url.port === '' ? (isHttps ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: req.method,
      headers: { ...req.headers, host: url.host, 'accept-encoding': 'identity' },
      agent: isHttps ? req.agents.https : req.agents.http,
    };
    if (isHttps) {
      options.servername = hostname;
      if (req.ca !== undefined) options.ca = req.ca;
    }
    const client = isHttps ? https : http;
    const outgoing = client.request(options, (res) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > req.maxBytes) {
        finish(new NetError('too_large', origin, `response declares ${declared} bytes, limit ${req.maxBytes}`));
        res.destroy();
        outgoing.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > req.maxBytes) {
          finish(new NetError('too_large', origin, `response exceeded ${req.maxBytes} bytes`));
          res.destroy();
          outgoing.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        if (!res.complete) return finish(new NetError('bad_body', origin, 'response body truncated'));
        finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks, total) });
      });
      res.on('aborted', () => finish(new NetError('bad_body', origin, 'response body truncated')));
      res.on('error', (cause) => {
        if (signal.aborted) return finish(abortError());
        finish(new NetError('bad_body', origin, 'response body truncated or connection reset', { cause: safeCause(cause) }));
      });
    });
    const onAbort = () => {
      const err = abortError();
      outgoing.destroy(err);
      finish(err);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    outgoing.on('error', (cause) => {
      if (signal.aborted) return finish(abortError());
      finish(new NetError('network', origin, `connection failed (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { cause: safeCause(cause) }));
    });
    if (req.body !== undefined) outgoing.end(req.body);
    else outgoing.end();
  });
}

/** Keeps only the error code of a socket error: Node's messages can echo addresses or header values. */
function safeCause(err: unknown): { code?: string } {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === undefined ? {} : { code };
}
