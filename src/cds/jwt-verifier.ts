/**
 * Verifies the JWT an EHR sends with every CDS Hooks call (CDS Hooks 2.0 §Trusting CDS Clients):
 * asymmetric algorithm, `kid`, `iss` on the allowlist, `jku` on that issuer's allowlist (checked before
 * any fetch), signature, `aud` equal to the endpoint URL (compared after normalising scheme/host case, default port and one trailing slash), `exp`/`iat` with bounded skew, `jti` never
 * seen before, and `tenant` when configured. Any failure is a bare 401; the reason is only logged.
 */
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeProtectedHeader, errors as joseErrors, jwtVerify, type FetchImplementation, type JSONWebKeySet, type JWTPayload } from 'jose';
import { AppError } from '../errors.js';
import { createGuardedFetch, type GuardedFetch } from '../net/guarded-fetch.js';
import type { ReplayCache } from './replay-cache.js';

export interface TrustedCdsClient {
  iss: string;
  jku: string[];
  jwks?: { keys: Record<string, unknown>[] };
  tenant?: string;
  /** FHIR base URLs this EHR's hook calls may name as fhirServer (empty: the service's FHIR allowlist). */
  fhirServers?: string[];
}

export const CDS_JWT_ALGORITHMS = ['ES384', 'RS384', 'ES256', 'RS256', 'ES512', 'RS512', 'PS384', 'PS256', 'PS512'];
/** Longest JWT lifetime accepted (Epic issues 15 minutes + 5 minutes of nbf back-dating). */
const MAX_LIFETIME_S = 30 * 60;
/** A JWK Set is a few keys: anything larger is refused while it is read. */
export const MAX_JWKS_BYTES = 64 * 1024;
const MAX_JTI_LENGTH = 256;

export interface CdsJwtVerifierOptions {
  clients: TrustedCdsClient[];
  replay: ReplayCache;
  clockSkewSeconds: number;
  now?: () => number;
  /**
   * How `jku` key sets are fetched. Defaults to a guarded fetch (src/net) allowed to reach exactly the
   * configured `jku` URLs, with address checks, pinning, a timeout and a size cap.
   */
  fetch?: GuardedFetch;
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

export class CdsAuthError extends AppError {
  constructor(readonly reason: string) {
    super('unauthorized', 'unauthorized', { expose: true });
  }
}

export class CdsJwtVerifier {
  private readonly remote = new Map<string, KeyResolver>();
  private readonly local = new Map<string, KeyResolver>();
  private readonly now: () => number;
  private readonly fetchJwks: FetchImplementation;
  private readonly ownFetch?: GuardedFetch;

  constructor(private readonly opts: CdsJwtVerifierOptions) {
    this.now = opts.now ?? Date.now;
    for (const c of opts.clients) if (c.jwks) this.local.set(c.iss, createLocalJWKSet(c.jwks as JSONWebKeySet));
    const guarded = opts.fetch ?? (this.ownFetch = createGuardedFetch({ allow: opts.clients.flatMap((c) => c.jku), timeoutMs: 5000, maxBytes: MAX_JWKS_BYTES, retry: { maxRetries: 0 } }));
    this.fetchJwks = jwksThrough(guarded);
  }

  /** Releases the key-set fetch's connections. */
  close(): void {
    this.ownFetch?.close();
  }

  /**
   * @param authorization the Authorization header value
   * @param audiences the exact URLs this call may be addressed to (the endpoint; for feedback also its /feedback URL)
   */
  async verify(authorization: string | undefined, audiences: string[]): Promise<JWTPayload> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw new CdsAuthError('missing bearer JWT');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new CdsAuthError('malformed JWT header');
    }
    if (!header.alg || !CDS_JWT_ALGORITHMS.includes(header.alg)) throw new CdsAuthError(`algorithm not allowed: ${String(header.alg)}`);
    // Header fields are untrusted JSON: a non-string value is refused, never used (found by test/fuzz/jwt.test.ts).
    if (typeof header.kid !== 'string' || !header.kid) throw new CdsAuthError('JWT header has no kid');
    if (header.typ !== undefined && (typeof header.typ !== 'string' || header.typ.toUpperCase() !== 'JWT')) throw new CdsAuthError('JWT typ is not JWT');
    if (header.jku !== undefined && typeof header.jku !== 'string') throw new CdsAuthError('JWT jku is not a URL');

    const iss = unverifiedIssuer(token);
    const client = this.opts.clients.find((c) => c.iss === iss);
    if (!client) throw new CdsAuthError('issuer not on the allowlist');
    const keys = this.keysFor(client, header.jku);

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: client.iss,
        algorithms: CDS_JWT_ALGORITHMS,
        clockTolerance: this.opts.clockSkewSeconds,
        currentDate: new Date(this.now()),
        requiredClaims: ['iss', 'aud', 'exp', 'iat', 'jti'],
        maxTokenAge: MAX_LIFETIME_S,
      }));
    } catch (e) {
      throw new CdsAuthError(describeJoseError(e));
    }
    if ((payload.exp as number) - (payload.iat as number) > MAX_LIFETIME_S) throw new CdsAuthError('JWT lifetime too long');
    if (!audienceMatches(payload.aud, audiences)) throw new CdsAuthError('aud is not this endpoint');
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > MAX_JTI_LENGTH) throw new CdsAuthError('jti is not a non-empty string');
    if (client.tenant !== undefined && payload.tenant !== client.tenant) throw new CdsAuthError('tenant mismatch');
    const fresh = await this.opts.replay.checkAndRemember(`${client.iss}\u0000${String(payload.jti)}`, ((payload.exp as number) + this.opts.clockSkewSeconds) * 1000);
    if (!fresh) throw new CdsAuthError('jti replayed');
    return payload;
  }

  private keysFor(client: TrustedCdsClient, jku: string | undefined): KeyResolver {
    if (jku === undefined) {
      const local = this.local.get(client.iss);
      if (local) return local;
      if (client.jku.length === 1) return this.remoteSet(client.jku[0]!);
      throw new CdsAuthError('JWT has no jku and no keys are configured for this issuer');
    }
    if (!client.jku.includes(jku)) throw new CdsAuthError('jku not on the allowlist for this issuer');
    return this.remoteSet(jku);
  }

  private remoteSet(url: string): KeyResolver {
    let set = this.remote.get(url);
    if (!set) {
      set = createRemoteJWKSet(new URL(url), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000, [customFetch]: this.fetchJwks }) as unknown as KeyResolver;
      this.remote.set(url, set);
    }
    return set;
  }
}

/**
 * URL comparison as an EHR analyst's hand-typed `aud` needs: scheme and host case-insensitive, a default
 * port equal to none, one trailing slash ignored. Path, query and everything else stay exact.
 */
export function normaliseAudience(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/$/, '')}${u.search}`;
  } catch {
    return url;
  }
}

function audienceMatches(aud: unknown, audiences: string[]): boolean {
  const wanted = new Set(audiences.map(normaliseAudience));
  const given = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  return given.some((a) => typeof a === 'string' && wanted.has(normaliseAudience(a)));
}

/** jose's key-set fetch, answered by the guarded fetch (allowlist, address checks, size cap) instead of the global fetch. */
function jwksThrough(fetch: GuardedFetch): FetchImplementation {
  return async (url, options) => {
    const res = await fetch(url, { headers: { accept: 'application/json' }, signal: options.signal, maxBytes: MAX_JWKS_BYTES, retry: false });
    return new Response(new Uint8Array(res.body), { status: res.status, headers: { 'content-type': res.header('content-type') ?? 'application/json' } });
  };
}

function unverifiedIssuer(token: string): string | undefined {
  try {
    const body = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown };
    return typeof body.iss === 'string' ? body.iss : undefined;
  } catch {
    return undefined;
  }
}

function describeJoseError(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'JWT expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `claim check failed: ${e.claim} (${e.reason})`;
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature invalid';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'no key with that kid';
  if (e instanceof joseErrors.JWKSTimeout) return 'JWKS fetch timed out';
  if (e instanceof joseErrors.JOSEError) return `${e.code}`;
  return 'JWT verification failed';
}
