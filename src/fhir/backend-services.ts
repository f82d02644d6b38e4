/**
 * SMART Backend Services: client_credentials with a private_key_jwt client assertion (RS384/ES384).
 * The token URL is discovered from {fhirBase}/.well-known/smart-configuration (or configured), tokens
 * are cached until shortly before expiry, and concurrent callers share one token request.
 */
import { AppError } from '../errors.js';
import { CLIENT_ASSERTION_TYPE, signClientAssertion } from './client-assertion.js';
import type { Logger } from '../log.js';
import { describeOrigin } from '../net/allowlist.js';
import type { GuardedFetch } from '../net/guarded-fetch.js';
import { NetError } from '../net/net-error.js';
import type { ServiceKey } from './service-keys.js';
import type { TokenSource } from './token-source.js';

export interface BackendServicesOptions {
  readonly fetch: GuardedFetch;
  readonly fhirBaseUrl: string;
  readonly clientId: string;
  /** e.g. 'system/Patient.rs system/Observation.rs' */
  readonly scope: string;
  readonly key: ServiceKey;
  /** Skip discovery and use this token URL. */
  readonly tokenUrl?: string;
  /** Sent as the `jku` header when the EHR registered our JWKS URL. */
  readonly jku?: string;
  /** Assertion lifetime in seconds; capped at 300 (SMART: exp no more than 5 minutes ahead). */
  readonly assertionLifetimeS?: number;
  /** Refresh this long before the token expires (default 60 s). */
  readonly refreshSkewS?: number;
  readonly now?: () => number;
  readonly logger?: Logger;
  readonly timeoutMs?: number;
}

export interface BackendToken {
  readonly accessToken: string;
  readonly expiresAt: number;
  readonly scope?: string;
  readonly obtainedAt: number;
}

const ERROR_CODE_RE = /^[a-z_]{1,40}$/;

export class BackendServicesTokenSource implements TokenSource {
  private readonly opts: BackendServicesOptions;
  private readonly now: () => number;
  private cached: BackendToken | undefined;
  private inflight: Promise<BackendToken> | undefined;
  private tokenUrl: string | undefined;
  /** How many tokens were obtained from the server (observability and tests). */
  tokensIssued = 0;

  constructor(opts: BackendServicesOptions) {
    if (!opts.clientId) throw new AppError('config_invalid', 'backend services clientId is required');
    if (!opts.scope) throw new AppError('config_invalid', 'backend services scope is required');
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.tokenUrl = opts.tokenUrl;
  }

  async getToken(signal?: AbortSignal): Promise<string> {
    return (await this.getTokenInfo(signal)).accessToken;
  }

  async getTokenInfo(signal?: AbortSignal): Promise<BackendToken> {
    const skew = (this.opts.refreshSkewS ?? 60) * 1000;
    const c = this.cached;
    if (c && this.now() < c.expiresAt - Math.min(skew, (c.expiresAt - c.obtainedAt) / 2)) return c;
    this.inflight ??= this.requestToken(signal).finally(() => {
      this.inflight = undefined;
    });
    const token = await this.inflight;
    this.cached = token;
    return token;
  }

  invalidate(): boolean {
    this.cached = undefined;
    return true;
  }

  /** Finds token_endpoint in the server's SMART configuration. */
  async discoverTokenUrl(signal?: AbortSignal): Promise<string> {
    if (this.tokenUrl) return this.tokenUrl;
    const url = `${this.opts.fhirBaseUrl.replace(/\/+$/, '')}/.well-known/smart-configuration`;
    const origin = describeOrigin(url);
    const res = await this.opts.fetch(url, { headers: { accept: 'application/json' }, signal, timeoutMs: this.opts.timeoutMs, maxBytes: 256 * 1024 });
    if (!res.ok) throw new NetError('http_status', origin, `SMART configuration answered HTTP ${res.status}`, { upstreamStatus: res.status });
    let conf: { token_endpoint?: unknown; token_endpoint_auth_methods_supported?: unknown };
    try {
      conf = JSON.parse(res.text()) as typeof conf;
    } catch {
      throw new NetError('bad_body', origin, 'SMART configuration is not JSON');
    }
    if (typeof conf.token_endpoint !== 'string' || !/^https?:\/\//.test(conf.token_endpoint)) {
      throw new NetError('bad_body', origin, 'SMART configuration has no absolute token_endpoint');
    }
    const methods = conf.token_endpoint_auth_methods_supported;
    if (Array.isArray(methods) && !methods.includes('private_key_jwt')) {
      this.opts.logger?.warn({ origin }, 'SMART configuration does not list private_key_jwt; trying anyway');
    }
    this.tokenUrl = conf.token_endpoint;
    return this.tokenUrl;
  }

  /** The signed client assertion for one token request (exported for tests and diagnostics). */
  createAssertion(tokenUrl: string): Promise<string> {
    const { key, clientId } = this.opts;
    return signClientAssertion({ key, clientId, audience: tokenUrl, lifetimeS: this.opts.assertionLifetimeS, ...(this.opts.jku ? { jku: this.opts.jku } : {}), now: this.now() });
  }

  private async requestToken(signal?: AbortSignal): Promise<BackendToken> {
    const tokenUrl = await this.discoverTokenUrl(signal);
    const origin = describeOrigin(tokenUrl);
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: this.opts.scope,
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: await this.createAssertion(tokenUrl),
    });
    const requestedAt = this.now();
    const res = await this.opts.fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal,
      timeoutMs: this.opts.timeoutMs,
      maxBytes: 256 * 1024,
    });
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(res.text()) as Record<string, unknown>;
    } catch {
      if (res.ok) throw new NetError('bad_body', origin, 'token response is not JSON');
    }
    if (!res.ok) {
      // Only the OAuth error code is kept: error_description is free text from the server.
      const code = typeof body.error === 'string' && ERROR_CODE_RE.test(body.error) ? body.error : 'unknown';
      // 400/401/403: the EHR refused this client (registration, key, scopes): retrying soon does not help.
      const refused = res.status === 400 || res.status === 401 || res.status === 403;
      throw new NetError('http_status', origin, `token endpoint refused the request: HTTP ${res.status} ${code}`, { upstreamStatus: res.status, ...(refused ? { code: 'upstream_refused' as const } : {}) });
    }
    if (typeof body.access_token !== 'string' || body.access_token === '') throw new NetError('bad_body', origin, 'token response has no access_token');
    if (typeof body.token_type !== 'string' || body.token_type.toLowerCase() !== 'bearer') throw new NetError('bad_body', origin, 'token response is not a bearer token');
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 300;
    this.tokensIssued++;
    this.opts.logger?.info({ origin, expiresIn }, 'backend services token obtained');
    return { accessToken: body.access_token, obtainedAt: requestedAt, expiresAt: requestedAt + expiresIn * 1000, scope: typeof body.scope === 'string' ? body.scope : undefined };
  }
}
