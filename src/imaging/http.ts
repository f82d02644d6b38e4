/**
 * The small HTTP surface the DICOMweb client and attachment fetcher need. The service passes the guarded
 * fetch of src/net (structurally compatible); `adaptWebFetch` wraps a WHATWG fetch for other callers.
 */
import { AppError } from '../errors.js';

export interface HttpRequest {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly ok: boolean;
  header(name: string): string | undefined;
  readonly body: Buffer;
}

export type HttpFetch = (url: string, init?: HttpRequest) => Promise<HttpResponse>;

export type WebFetch = (input: string, init?: RequestInit) => Promise<Response>;

/** Wraps a WHATWG fetch: per-call timeout and a byte cap enforced while streaming the body. */
export function adaptWebFetch(f: WebFetch, defaults: { timeoutMs?: number; maxBytes?: number } = {}): HttpFetch {
  return async (url, init = {}) => {
    const timeoutMs = init.timeoutMs ?? defaults.timeoutMs ?? 30_000;
    const maxBytes = init.maxBytes ?? defaults.maxBytes ?? 64 * 1024 * 1024;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const origin = safeOrigin(url);
    try {
      const res = await f(url, { method: init.method ?? 'GET', headers: { ...init.headers }, signal, redirect: 'error' });
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (declared > maxBytes) {
        await res.body?.cancel();
        throw new AppError('payload_too_large', `${origin}: response of ${declared} bytes over ${maxBytes}`);
      }
      const chunks: Buffer[] = [];
      let total = 0;
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          total += chunk.byteLength;
          if (total > maxBytes) throw new AppError('payload_too_large', `${origin}: response over ${maxBytes} bytes`);
          chunks.push(Buffer.from(chunk));
        }
      }
      const body = Buffer.concat(chunks, total);
      return { status: res.status, ok: res.ok, header: (n: string) => res.headers.get(n) ?? undefined, body };
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (timeout.aborted) throw new AppError('upstream_timeout', `${origin}: no complete answer in ${timeoutMs} ms`, { cause: err });
      throw new AppError('upstream_error', `${origin}: request failed`, { cause: err });
    }
  };
}

/** scheme://host:port only — never paths (UIDs) or queries. */
export function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}
