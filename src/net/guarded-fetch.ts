/**
 * The one way this service calls out (FHIR, token endpoints, PACS). Every hop is checked before a socket
 * is opened: http(s) only, URL on the allowlist, every DNS answer in an allowed address class; the
 * connection is pinned to the checked address. Redirects are followed by hand (re-checked, max 3),
 * each attempt has a timeout, bodies are size-limited, and 429/503 are retried with capped backoff.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Logger } from '../log.js';
import { compileAllowlist, describeOrigin, matchAllowlist, type AllowEntry, type AllowEntryConfig } from './allowlist.js';
import { classifyAddress } from './address-class.js';
import { NetError } from './net-error.js';
import { sendPinned, type RawResponse } from './pinned-request.js';
import { DEFAULT_RETRY, RETRYABLE_STATUS, nextRetryDelay, type RetryOptions } from './retry-policy.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export interface NetPolicy {
  readonly allow: readonly (string | AllowEntryConfig)[];
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
  /** At most 3. */
  readonly maxRedirects?: number;
  readonly retry?: Partial<RetryOptions>;
  /** DNS resolution; defaults to node:dns lookup (all addresses). */
  readonly resolve?: Resolver;
  /** Extra trusted CA for https (a private PKI). */
  readonly ca?: string | Buffer;
  readonly logger?: Logger;
  /** For tests: deterministic jitter. */
  readonly random?: () => number;
}

export interface GuardedRequestInit {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | string;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
  /** Set false to disable 429/503 retries for this call. */
  readonly retry?: boolean;
}

export interface GuardedResponse {
  readonly status: number;
  readonly ok: boolean;
  /** Final URL after redirects. */
  readonly url: string;
  header(name: string): string | undefined;
  readonly body: Buffer;
  text(): string;
}

export interface GuardedFetch {
  (url: string | URL, init?: GuardedRequestInit): Promise<GuardedResponse>;
  /** Throws the NetError the call would fail with, without connecting (for config checks and early refusal). */
  check(url: string | URL): Promise<void>;
  /** Synchronous allowlist check only (scheme, host, port, path prefix; no DNS): e.g. a hook's fhirServer or a launch iss. */
  allows(url: string): boolean;
  close(): void;
}

const DEFAULTS = { timeoutMs: 10_000, maxBytes: 10 * 1024 * 1024, maxRedirects: 3 };
const REDIRECT = new Set([301, 302, 303, 307, 308]);

const defaultResolver: Resolver = async (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function createGuardedFetch(policy: NetPolicy): GuardedFetch {
  const allow: readonly AllowEntry[] = compileAllowlist(policy.allow);
  const resolve = policy.resolve ?? defaultResolver;
  const retry: RetryOptions = { ...DEFAULT_RETRY, ...policy.retry };
  const maxRedirects = Math.min(3, policy.maxRedirects ?? DEFAULTS.maxRedirects);
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 16 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 16 }),
  };
  const log = policy.logger;

  /** Policy checks for one hop; returns the address to connect to. Never opens a socket. */
  async function vet(url: URL, signal: AbortSignal): Promise<string> {
    const origin = describeOrigin(url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new NetError('refused_scheme', `${url.protocol}//`, 'only http and https are allowed');
    }
    if (url.username !== '' || url.password !== '') {
      throw new NetError('refused_scheme', origin, 'credentials in URLs are not allowed');
    }
    const entry = matchAllowlist(allow, url);
    if (!entry) throw new NetError('refused_allowlist', origin, 'URL is not on the outbound allowlist');
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    let addresses: readonly ResolvedAddress[];
    if (net.isIP(host)) addresses = [{ address: host, family: net.isIP(host) }];
    else {
      try {
        addresses = await Promise.race([
          resolve(host),
          new Promise<never>((_, reject) => {
            if (signal.aborted) reject(signal.reason);
            signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          }),
        ]);
      } catch (cause) {
        if (signal.aborted) throw new NetError('timeout', origin, 'DNS lookup timed out');
        throw new NetError('dns_failed', origin, 'DNS lookup failed', { cause: { code: (cause as NodeJS.ErrnoException)?.code } });
      }
    }
    if (addresses.length === 0) throw new NetError('dns_failed', origin, 'DNS lookup returned no address');
    for (const a of addresses) {
      const cls = classifyAddress(a.address);
      if (!entry.allowedClasses.has(cls)) {
        throw new NetError('refused_address', origin, `resolves to a ${cls} address, which is not allowed`);
      }
    }
    return addresses[0].address;
  }

  async function exchange(url: URL, init: GuardedRequestInit, outer: AbortSignal | undefined): Promise<{ raw: RawResponse; url: URL }> {
    let current = url;
    let method = (init.method ?? 'GET').toUpperCase();
    let body = typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
    let headers: Record<string, string> = { ...init.headers };
    for (let hop = 0; ; hop++) {
      const timeoutMs = init.timeoutMs ?? policy.timeoutMs ?? DEFAULTS.timeoutMs;
      const timer = AbortSignal.timeout(timeoutMs);
      const signal = outer ? AbortSignal.any([outer, timer]) : timer;
      let address: string;
      try {
        address = await vet(current, signal);
      } catch (err) {
        log?.warn({ origin: describeOrigin(current), reason: (err as NetError).reason }, 'outbound request refused');
        throw err;
      }
      const raw = await sendPinned({
        url: current, address, method, headers, body, signal, agents, ca: policy.ca,
        maxBytes: init.maxBytes ?? policy.maxBytes ?? DEFAULTS.maxBytes,
        isTimeout: () => timer.aborted && !outer?.aborted,
      });
      if (!REDIRECT.has(raw.status)) return { raw, url: current };
      const location = raw.headers.location;
      const origin = describeOrigin(current);
      if (typeof location !== 'string' || location === '') throw new NetError('bad_redirect', origin, `HTTP ${raw.status} without Location`);
      if (hop >= maxRedirects) throw new NetError('too_many_redirects', origin, `more than ${maxRedirects} redirects`);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new NetError('bad_redirect', origin, 'redirect Location is not a URL');
      }
      if (next.origin !== current.origin) {
        // never forward credentials to another origin
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !['authorization', 'cookie'].includes(k.toLowerCase())));
      }
      if (raw.status === 303 || ((raw.status === 301 || raw.status === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        body = undefined;
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !['content-type', 'content-length'].includes(k.toLowerCase())));
      }
      current = next;
    }
  }

  const guarded = async (input: string | URL, init: GuardedRequestInit = {}): Promise<GuardedResponse> => {
    let url: URL;
    try {
      url = typeof input === 'string' ? new URL(input) : input;
    } catch {
      throw new NetError('refused_scheme', '(invalid URL)', 'URL could not be parsed');
    }
    for (let attempt = 0; ; attempt++) {
      const { raw, url: finalUrl } = await exchange(url, init, init.signal);
      if (RETRYABLE_STATUS.has(raw.status) && init.retry !== false) {
        const ra = raw.headers['retry-after'];
        const delay = nextRetryDelay(attempt, typeof ra === 'string' ? ra : undefined, retry, policy.random);
        if (delay !== undefined) {
          log?.info({ origin: describeOrigin(url), status: raw.status, attempt: attempt + 1, delayMs: delay }, 'outbound retry');
          try {
            await sleep(delay, init.signal);
          } catch {
            throw new NetError('aborted', describeOrigin(url), 'request aborted by caller');
          }
          continue;
        }
      }
      return toResponse(raw, finalUrl);
    }
  };
  const fetchFn = guarded as GuardedFetch;
  fetchFn.check = async (input) => {
    const url = typeof input === 'string' ? new URL(input) : input;
    await vet(url, AbortSignal.timeout(policy.timeoutMs ?? DEFAULTS.timeoutMs));
  };
  fetchFn.allows = (input) => {
    try {
      const url = new URL(input);
      return url.username === '' && url.password === '' && matchAllowlist(allow, url) !== undefined;
    } catch {
      return false;
    }
  };
  fetchFn.close = () => {
    agents.http.destroy();
    agents.https.destroy();
  };
  return fetchFn;
}

function toResponse(raw: RawResponse, url: URL): GuardedResponse {
  return {
    status: raw.status,
    ok: raw.status >= 200 && raw.status < 300,
    url: url.href,
    body: raw.body,
    header(name: string) {
      const v = raw.headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(', ') : v;
    },
    text: () => raw.body.toString('utf8'),
  };
}
