/**
 * The outbound steps of a SMART App Launch, all through the guarded fetch: discovery of
 * `{iss}/.well-known/smart-configuration`, the authorization-code exchange and the refresh at the token
 * endpoint, as a public client or a confidential-asymmetric one (`private_key_jwt`).
 *
 * Why not `fhirclient` 2.6.3 (measured in test/launch/fhirclient-defects.test.ts, summed up in
 * docs/architecture.md): its requests leave through its own cross-fetch, which nothing can replace (so the
 * allowlist, address checks, size limits and timeouts of src/net/guarded-fetch.ts would be bypassed); its
 * token form writes `code` unencoded; its refresh sends no client assertion; its default state is 16
 * Math.random() characters. Doing the few steps here keeps every request on the guarded path.
 */
import { AppError } from '../src/errors.js';
import { CLIENT_ASSERTION_TYPE, signClientAssertion } from '../src/fhir/client-assertion.js';
import type { ServiceKey } from '../src/fhir/service-keys.js';
import type { GuardedFetch } from '../src/net/guarded-fetch.js';

/**
 * How the SMART app authenticates at the token endpoint (code exchange and refresh alike):
 *  - `none`: a public client, `client_id` in the form (PKCE is its proof);
 *  - `private_key_jwt`: SMART 2.2 confidential-asymmetric, a fresh signed `client_assertion` (RS384/ES384,
 *    iss = sub = client_id, aud = the token endpoint, exp <= 5 min, unique jti) on every token request; the
 *    EHR verifies it with the public keys this service serves at /.well-known/jwks.json.
 */
export type SmartClientAuth = { kind: 'none' } | { kind: 'private_key_jwt'; key: ServiceKey };

export interface SmartConfiguration {
  authorization_endpoint: string;
  token_endpoint: string;
  code_challenge_methods_supported?: string[];
  capabilities?: string[];
  /** OpenID Connect issuer and key set (SMART 2 lists both when it offers `sso-openid-connect`): id_token validation. */
  issuer?: string;
  jwks_uri?: string;
}

/** The token response fields the app uses; tokens stay server-side. */
export interface SmartTokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
  patient?: string;
  encounter?: string;
  need_patient_banner?: boolean;
  smart_style_url?: string;
  /** A CDS card link's `appContext`, passed through by the EHR (volmo's cards: `{"analysis":"<id>"}`). */
  appContext?: string;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

function httpUrl(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    const u = new URL(value);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.username === '' && u.password === '';
  } catch {
    return false;
  }
}

function parseJson(text: string, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new AppError('upstream_error', `${what} is not a JSON object`);
}

export async function discoverSmartConfiguration(fetch: GuardedFetch, iss: string, signal?: AbortSignal): Promise<SmartConfiguration> {
  const res = await fetch(`${iss.replace(/\/+$/, '')}/.well-known/smart-configuration`, { headers: { accept: 'application/json' }, signal, maxBytes: 256 * 1024 });
  if (!res.ok) throw new AppError('upstream_error', `SMART configuration answered HTTP ${res.status}`);
  const doc = parseJson(res.text(), 'SMART configuration');
  if (!httpUrl(doc.authorization_endpoint) || !httpUrl(doc.token_endpoint)) {
    throw new AppError('upstream_error', 'SMART configuration lacks http(s) authorization_endpoint/token_endpoint');
  }
  const methods = doc.code_challenge_methods_supported;
  // SMART 2 requires S256; a server that lists methods without S256 (or lists only `plain`) is refused.
  if (Array.isArray(methods) && !methods.includes('S256')) throw new AppError('upstream_error', 'the authorization server does not support PKCE S256');
  return {
    authorization_endpoint: doc.authorization_endpoint,
    token_endpoint: doc.token_endpoint,
    ...(Array.isArray(methods) ? { code_challenge_methods_supported: methods.filter((m): m is string => typeof m === 'string') } : {}),
    ...(Array.isArray(doc.capabilities) ? { capabilities: doc.capabilities.filter((c): c is string => typeof c === 'string') } : {}),
    ...(typeof doc.issuer === 'string' && doc.issuer.length <= 2048 ? { issuer: doc.issuer } : {}),
    ...(httpUrl(doc.jwks_uri) ? { jwks_uri: doc.jwks_uri } : {}),
  };
}

export interface AuthorizeParams {
  clientId: string;
  redirectUri: string;
  scope: string;
  state: string;
  iss: string;
  launch?: string;
  codeChallenge: string;
  /** OpenID Connect nonce, sent when `openid` is asked; the id_token must echo it. */
  nonce?: string;
}

export function authorizeUrl(endpoint: string, p: AuthorizeParams): string {
  const url = new URL(endpoint);
  const q = url.searchParams;
  q.set('response_type', 'code');
  q.set('client_id', p.clientId);
  q.set('redirect_uri', p.redirectUri);
  q.set('scope', p.scope);
  q.set('state', p.state);
  q.set('aud', p.iss);
  if (p.launch !== undefined) q.set('launch', p.launch);
  q.set('code_challenge', p.codeChallenge);
  q.set('code_challenge_method', 'S256');
  if (p.nonce !== undefined) q.set('nonce', p.nonce);
  return url.href;
}

/** Checks the token response defensively; messages name fields, never values. */
export function parseTokenResponse(body: Record<string, unknown>): SmartTokenResponse {
  if (typeof body.access_token !== 'string' || body.access_token === '') throw new AppError('upstream_error', 'token response has no access_token');
  if (typeof body.token_type !== 'string' || body.token_type.toLowerCase() !== 'bearer') throw new AppError('upstream_error', 'token response token_type is not Bearer');
  const out: SmartTokenResponse = { access_token: body.access_token, token_type: body.token_type };
  if (typeof body.expires_in === 'number' && Number.isFinite(body.expires_in) && body.expires_in > 0) out.expires_in = body.expires_in;
  for (const k of ['scope', 'refresh_token', 'id_token', 'smart_style_url'] as const) if (typeof body[k] === 'string') out[k] = body[k];
  if (body.patient !== undefined) {
    if (typeof body.patient !== 'string' || !FHIR_ID.test(body.patient)) throw new AppError('upstream_error', 'token response patient is not a FHIR id');
    out.patient = body.patient;
  }
  if (typeof body.encounter === 'string' && FHIR_ID.test(body.encounter)) out.encounter = body.encounter;
  if (typeof body.need_patient_banner === 'boolean') out.need_patient_banner = body.need_patient_banner;
  if (typeof body.appContext === 'string' && body.appContext.length <= 4096) out.appContext = body.appContext;
  // No `fhirUser` from here: the clinician's identity comes only from a validated id_token (id-token.ts).
  return out;
}

/**
 * The token endpoint answered 4xx with an OAuth error: the EHR refused (as opposed to could not be reached).
 * Only the RFC 6749 `error` code is kept; `error_description` is free text that could hold PHI and is dropped.
 */
export class TokenRefusedError extends AppError {
  constructor(readonly status: number, readonly oauthError: string | undefined) {
    super('upstream_error', `token endpoint refused: HTTP ${status}${oauthError ? ` (${oauthError})` : ''}`);
  }
}

async function clientAuthFields(auth: SmartClientAuth, clientId: string, tokenEndpoint: string): Promise<Record<string, string>> {
  if (auth.kind === 'none') return { client_id: clientId };
  const assertion = await signClientAssertion({ key: auth.key, clientId, audience: tokenEndpoint });
  return { client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion };
}

async function tokenRequest(
  fetch: GuardedFetch,
  tokenEndpoint: string,
  form: Record<string, string>,
  client: { clientId: string; auth?: SmartClientAuth },
  signal?: AbortSignal,
): Promise<SmartTokenResponse> {
  const auth = await clientAuthFields(client.auth ?? { kind: 'none' }, client.clientId, tokenEndpoint);
  const res = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ ...form, ...auth }).toString(),
    retry: false, // an authorization code is single-use; a refresh token may rotate
    maxBytes: 256 * 1024,
    signal,
  });
  if (!res.ok) {
    let error: string | undefined;
    try {
      const e = parseJson(res.text(), 'token error').error;
      if (typeof e === 'string' && /^[a-z_]{1,40}$/.test(e)) error = e;
    } catch {
      // not JSON: status only
    }
    if (res.status >= 400 && res.status < 500) throw new TokenRefusedError(res.status, error);
    throw new AppError('upstream_error', `token endpoint answered HTTP ${res.status}${error ? ` (${error})` : ''}`);
  }
  return parseTokenResponse(parseJson(res.text(), 'token response'));
}

export function exchangeCode(
  fetch: GuardedFetch,
  tokenEndpoint: string,
  p: { code: string; codeVerifier: string; clientId: string; redirectUri: string; auth?: SmartClientAuth },
  signal?: AbortSignal,
): Promise<SmartTokenResponse> {
  return tokenRequest(fetch, tokenEndpoint, { grant_type: 'authorization_code', code: p.code, redirect_uri: p.redirectUri, code_verifier: p.codeVerifier }, p, signal);
}

/** A new access token from a refresh token, authenticated as the code exchange was (client_id, or a client assertion). */
export function refreshAccessToken(
  fetch: GuardedFetch,
  tokenEndpoint: string,
  p: { refreshToken: string; clientId: string; auth?: SmartClientAuth },
  signal?: AbortSignal,
): Promise<SmartTokenResponse> {
  return tokenRequest(fetch, tokenEndpoint, { grant_type: 'refresh_token', refresh_token: p.refreshToken }, p, signal);
}
