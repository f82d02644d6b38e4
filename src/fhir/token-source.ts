/**
 * Where a FHIR bearer token comes from: a CDS Hooks `fhirAuthorization`, a SMART launch session, or
 * SMART Backend Services (backend-services.ts). Tokens are never logged, stored or put in messages.
 */
import { AppError } from '../errors.js';

export interface TokenSource {
  /** A bearer token valid now, or undefined for an open (unauthenticated) server. */
  getToken(signal?: AbortSignal): Promise<string | undefined>;
  /** Called after a 401: a source that can mint a fresh token drops its cache and returns true. */
  invalidate?(): boolean;
}

export interface FhirAuthorization {
  readonly access_token: string;
  readonly token_type?: string;
  readonly expires_in?: number;
  readonly scope?: string;
  readonly subject?: string;
  readonly patient?: string;
}

/** Used when an EHR omits expires_in (seen with HSPC sandboxes): treat the token as short-lived. */
export const DEFAULT_EHR_TOKEN_LIFETIME_S = 300;

/** Checks the shape of a CDS Hooks fhirAuthorization defensively; the message names fields, never values. */
export function parseFhirAuthorization(value: unknown): FhirAuthorization {
  if (typeof value !== 'object' || value === null) throw new AppError('bad_request', 'fhirAuthorization must be an object');
  const v = value as Record<string, unknown>;
  if (typeof v.access_token !== 'string' || v.access_token.length === 0) throw new AppError('bad_request', 'fhirAuthorization.access_token is missing');
  if (v.token_type !== undefined && (typeof v.token_type !== 'string' || v.token_type.toLowerCase() !== 'bearer')) {
    throw new AppError('bad_request', 'fhirAuthorization.token_type must be Bearer');
  }
  if (v.expires_in !== undefined && (typeof v.expires_in !== 'number' || !Number.isFinite(v.expires_in) || v.expires_in < 0)) {
    throw new AppError('bad_request', 'fhirAuthorization.expires_in must be a non-negative number');
  }
  for (const k of ['scope', 'subject', 'patient'] as const) {
    if (v[k] !== undefined && typeof v[k] !== 'string') throw new AppError('bad_request', `fhirAuthorization.${k} must be a string`);
  }
  return v as unknown as FhirAuthorization;
}

/** The token an EHR handed us with a hook call; it expires `expires_in` seconds after we received it. */
export function fhirAuthorizationTokenSource(auth: FhirAuthorization, now: () => number = Date.now): TokenSource {
  const expiresAt = now() + (auth.expires_in ?? DEFAULT_EHR_TOKEN_LIFETIME_S) * 1000;
  const token = auth.access_token;
  return {
    async getToken() {
      if (now() >= expiresAt) throw new AppError('upstream_refused', 'the EHR-provided FHIR access token has expired', { expose: true });
      return token;
    },
  };
}

export interface SmartSessionToken {
  readonly accessToken: string;
  /** Epoch milliseconds, if known. */
  readonly expiresAt?: number;
}

/** The access token of a SMART launch session; `get` is called per request so refreshes are picked up. */
export function smartSessionTokenSource(get: () => SmartSessionToken | Promise<SmartSessionToken>, now: () => number = Date.now): TokenSource {
  return {
    async getToken() {
      const t = await get();
      if (t.expiresAt !== undefined && now() >= t.expiresAt) {
        throw new AppError('unauthorized', 'the SMART session access token has expired; relaunch the app', { expose: true });
      }
      return t.accessToken;
    },
  };
}

/** No Authorization header (open sandbox servers). */
export const anonymousTokenSource: TokenSource = { getToken: async () => undefined };
