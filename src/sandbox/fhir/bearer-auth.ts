/**
 * Verifies the sandbox authorization server's JWT access tokens (RFC 9068 `at+jwt`) for the FHIR server:
 * signature against the server's JWKS (fetched over loopback, cached by jose), `iss`, `aud` = the FHIR base
 * URL, `exp`. Produces the access context the scope checks need. Never logs or echoes the token.
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { parseScopesLenient, type ParsedScopes } from '../smart-scopes.js';

export interface AccessContext {
  readonly scopes: ParsedScopes;
  /** The `patient` claim of a launch token: patient/ scopes are limited to this patient's compartment. */
  readonly patient?: string;
  readonly fhirUser?: string;
  readonly clientId?: string;
}

export interface BearerConfig {
  issuer: string;
  jwksUrl: string;
  audience: string;
}

/** Why a request has no valid bearer token; `error` goes into WWW-Authenticate (RFC 6750 §3). */
export class BearerError extends Error {
  constructor(
    readonly error: 'invalid_request' | 'invalid_token' | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'BearerError';
  }

  /** The WWW-Authenticate header value for a 401. */
  challenge(realm: string): string {
    const parts = [`realm="${realm}"`];
    if (this.error) parts.push(`error="${this.error}"`, `error_description="${this.message.replace(/"/g, "'")}"`);
    return `Bearer ${parts.join(', ')}`;
  }
}

export type BearerVerifier = (authorization: string | undefined) => Promise<AccessContext>;

const ACCEPTED_ALGS = ['RS256', 'RS384', 'PS256', 'ES256', 'ES384'];

export function createBearerVerifier(config: BearerConfig): BearerVerifier {
  const jwks = createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 1000 });
  return async (authorization) => {
    if (authorization === undefined || authorization === '') {
      throw new BearerError(undefined, 'a bearer access token is required');
    }
    const m = /^Bearer\s+([A-Za-z0-9._~+/-]+=*)\s*$/i.exec(authorization);
    if (!m) throw new BearerError('invalid_request', 'the Authorization header must use the Bearer scheme');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(m[1] as string, jwks, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: ACCEPTED_ALGS,
        typ: 'at+jwt',
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw new BearerError('invalid_token', describeJoseError(err));
    }
    return {
      scopes: parseScopesLenient(typeof payload.scope === 'string' ? payload.scope : undefined),
      ...(typeof payload.patient === 'string' ? { patient: payload.patient } : {}),
      ...(typeof payload.fhirUser === 'string' ? { fhirUser: payload.fhirUser } : {}),
      ...(typeof payload.client_id === 'string' ? { clientId: payload.client_id } : {}),
    };
  };
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'the access token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `the access token's ${err.claim} claim is not accepted`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'the access token signature does not verify';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'the access token is not signed by a known key';
  if (err instanceof joseErrors.JOSEError) return `the access token is not valid (${err.code})`;
  return 'the access token could not be verified';
}
