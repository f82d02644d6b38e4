/**
 * OpenID Connect `id_token` validation for the SMART app (SMART App Launch 2.2, `openid fhirUser`): the
 * signature against the authorization server's JWKS (fetched through the guarded fetch, never jose's own
 * fetch), `iss` = the discovered issuer, `aud` = this app's client id, `exp`/`iat`, and `nonce` when one was
 * sent. Only a validated id_token names the clinician (`fhirUser`) that write-back files in the name of.
 */
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet } from 'jose';
import { AppError } from '../src/errors.js';
import type { GuardedFetch } from '../src/net/guarded-fetch.js';

const JWKS_TTL_MS = 10 * 60_000;
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
const USER_REF = /(?:^|\/)((?:Practitioner|PractitionerRole)\/[A-Za-z0-9\-.]{1,64})$/;

export interface IdTokenExpectations {
  issuer: string;
  jwksUri: string;
  clientId: string;
  nonce?: string;
  /** Epoch ms (tests). */
  now?: number;
}

export interface ValidatedIdToken {
  /** `Practitioner/123` or `PractitionerRole/123` from the `fhirUser` claim; absent when the claim is missing or names another kind of user. */
  fhirUser?: string;
}

/** The clinician's reference from a `fhirUser` claim (absolute or relative); only a Practitioner(Role) is taken. */
export function fhirUserReference(value: unknown): string | undefined {
  return typeof value === 'string' && value.length <= 2048 ? USER_REF.exec(value)?.[1] : undefined;
}

/** JWKS per URL, kept a few minutes and re-read once when a token names a key it lacks (key rotation). */
export class JwksCache {
  private readonly sets = new Map<string, { at: number; keys: ReturnType<typeof createLocalJWKSet> }>();

  constructor(private readonly fetch: GuardedFetch, private readonly now: () => number = Date.now) {}

  async get(uri: string, fresh = false): Promise<ReturnType<typeof createLocalJWKSet>> {
    const hit = this.sets.get(uri);
    if (hit && !fresh && this.now() - hit.at < JWKS_TTL_MS) return hit.keys;
    const res = await this.fetch(uri, { headers: { accept: 'application/json' }, maxBytes: 256 * 1024 });
    if (!res.ok) throw new AppError('upstream_error', `JWKS answered HTTP ${res.status}`);
    let doc: unknown;
    try {
      doc = JSON.parse(res.text());
    } catch {
      throw new AppError('upstream_error', 'JWKS is not JSON');
    }
    if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) throw new AppError('upstream_error', 'JWKS has no keys');
    const keys = createLocalJWKSet(doc as JSONWebKeySet);
    if (this.sets.size > 100) this.sets.clear();
    this.sets.set(uri, { at: this.now(), keys });
    return keys;
  }
}

/** Why an id_token was refused, without its content (safe to log and to show). */
export class IdTokenError extends AppError {
  constructor(readonly why: string) {
    super('unauthorized', `id_token refused: ${why}`);
  }
}

export async function validateIdToken(jwks: JwksCache, idToken: string, x: IdTokenExpectations): Promise<ValidatedIdToken> {
  if (idToken.length > 16_384) throw new IdTokenError('too large');
  const options = {
    issuer: x.issuer,
    audience: x.clientId,
    algorithms: ALGORITHMS,
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
    clockTolerance: 60,
    ...(x.now !== undefined ? { currentDate: new Date(x.now) } : {}),
  };
  let payload;
  try {
    try {
      ({ payload } = await jwtVerify(idToken, await jwks.get(x.jwksUri), options));
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
      ({ payload } = await jwtVerify(idToken, await jwks.get(x.jwksUri, true), options));
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    // jose's codes name the failed check (ERR_JWT_EXPIRED, ERR_JWS_SIGNATURE_VERIFICATION_FAILED, ...), never claim values.
    const code = (err as { code?: string }).code;
    const claim = (err as { claim?: string }).claim;
    throw new IdTokenError(`${typeof code === 'string' ? code : 'invalid'}${typeof claim === 'string' ? ` (${claim})` : ''}`);
  }
  if (x.nonce !== undefined && payload.nonce !== x.nonce) throw new IdTokenError('nonce mismatch');
  const fhirUser = fhirUserReference(payload.fhirUser);
  return fhirUser ? { fhirUser } : {};
}
