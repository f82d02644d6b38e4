/**
 * oidc-provider configuration for the sandbox SMART authorization server:
 *  - authorization code + PKCE (S256 only, required for every client), client credentials;
 *  - client authentication `none` (public apps) or `private_key_jwt` signed RS384/ES384; assertion replay
 *    (same jti) is refused by oidc-provider's replay store; assertion lifetime capped at 5 minutes;
 *  - one resource server, the FHIR base URL: access tokens are JWTs (`at+jwt`) with aud = FHIR base,
 *    the granted SMART scopes, and the launch context (`patient`, `fhirUser`) as claims;
 *  - a client is granted only requested scopes its registration covers (smart-scopes.allowedScopes).
 */
import { interactionPolicy, type KoaContext } from 'oidc-provider';
import { allowedScopes } from '../smart-scopes.js';
import type { SandboxClient } from './clients.js';
import { toClientMetadata } from './clients.js';
import type { GrantContext } from './launch-contexts.js';
import { AUTH_ROUTES, CLIENT_AUTH_SIGNING_ALGS } from './smart-configuration.js';

export const OIDC_SCOPES = ['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'launch/encounter', 'online_access', 'offline_access'];
export const ACCESS_TOKEN_TTL_S = 3600;
export const BACKEND_TOKEN_TTL_S = 300;
const MAX_ASSERTION_LIFETIME_S = 300;

export interface ProviderConfigInput {
  fhirBaseUrl: string;
  clients: SandboxClient[];
  signingJwk: Record<string, unknown>;
  cookieKeys: string[];
  grantContexts: ReadonlyMap<string, GrantContext>;
  /** Invalid-target error constructor from oidc-provider (kept injectable so this module stays import-light). */
  invalidTarget: (description: string) => Error;
  invalidClientAuth: (description: string) => Error;
}

interface TokenLike {
  kind?: string;
  grantId?: string;
}

export function buildProviderConfiguration(input: ProviderConfigInput): Record<string, unknown> {
  const registered = new Map(input.clients.map((c) => [c.clientId, c.scope]));
  const resourceScopesFor = (ctx: KoaContext, clientId: string): string => {
    const e = ctx.oidc?.entities;
    const candidates = [
      typeof ctx.oidc?.params?.scope === 'string' ? ctx.oidc.params.scope : '',
      e?.AuthorizationCode?.scope ?? '',
      e?.Grant?.getResourceScope(input.fhirBaseUrl) ?? '',
      (e?.RefreshToken as { scope?: string } | undefined)?.scope ?? '',
    ].join(' ');
    return allowedScopes(candidates, registered.get(clientId) ?? '')
      .filter((s) => !OIDC_SCOPES.includes(s))
      .join(' ');
  };

  return {
    clients: input.clients.map(toClientMetadata),
    jwks: { keys: [input.signingJwk] },
    cookies: { keys: input.cookieKeys },
    routes: {
      authorization: AUTH_ROUTES.authorization,
      token: AUTH_ROUTES.token,
      jwks: AUTH_ROUTES.jwks,
      introspection: AUTH_ROUTES.introspection,
      revocation: AUTH_ROUTES.revocation,
      userinfo: AUTH_ROUTES.userinfo,
    },
    scopes: OIDC_SCOPES,
    claims: { openid: ['sub'], fhirUser: ['fhirUser'], profile: ['name'] },
    conformIdTokenClaims: false,
    extraParams: ['launch', 'aud'],
    pkce: { required: () => true },
    clientAuthMethods: ['none', 'private_key_jwt'],
    enabledJWA: { clientAuthSigningAlgValues: [...CLIENT_AUTH_SIGNING_ALGS] },
    responseTypes: ['code'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => input.fhirBaseUrl,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx: KoaContext, resource: string, client: { clientId: string }) => {
          if (resource !== input.fhirBaseUrl) throw input.invalidTarget('the only resource server is the sandbox FHIR base URL');
          const backend = ctx.oidc?.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials';
          return {
            scope: resourceScopesFor(ctx, client.clientId),
            audience: input.fhirBaseUrl,
            accessTokenFormat: 'jwt',
            accessTokenTTL: backend ? BACKEND_TOKEN_TTL_S : ACCESS_TOKEN_TTL_S,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`, policy: launchAwarePolicy() },
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub, fhirUser: sub }),
    }),
    extraTokenClaims: (_ctx: unknown, token: TokenLike) => {
      const c = token.grantId ? input.grantContexts.get(token.grantId) : undefined;
      if (!c) return undefined;
      return {
        ...(c.patient ? { patient: c.patient } : {}),
        ...(c.encounter ? { encounter: c.encounter } : {}),
        ...(c.fhirUser ? { fhirUser: c.fhirUser } : {}),
      };
    },
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }, code: { scopes: Set<string> }) =>
      client.grantTypeAllowed('refresh_token') && (code.scopes.has('offline_access') || code.scopes.has('online_access')),
    assertJwtClientAuthClaimsAndHeader: (_ctx: unknown, claims: { exp?: number; iat?: number }) => {
      const now = Math.floor(Date.now() / 1000);
      if (typeof claims.exp === 'number' && claims.exp - now > MAX_ASSERTION_LIFETIME_S + 15) {
        throw input.invalidClientAuth('client_assertion exp must be at most 5 minutes in the future');
      }
    },
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL_S,
      ClientCredentials: BACKEND_TOKEN_TTL_S,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 8 * 3600,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },
    fetch: loopbackOnlyFetch,
    renderError: (ctx: KoaContext, out: Record<string, unknown>) => {
      ctx.body = out; // JSON { error, error_description } instead of an HTML page
    },
  };
}

/** Client jwks_uri fetches: loopback only (the sandbox never leaves the machine), without the SSRF dispatcher. */
async function loopbackOnlyFetch(url: string | URL, options: RequestInit & { dispatcher?: unknown }): Promise<Response> {
  const host = new URL(url).hostname;
  if (!(host === 'localhost' || host === '[::1]' || /^127\./.test(host))) {
    throw new Error('the sandbox authorization server only fetches loopback URLs');
  }
  const { dispatcher: _ignored, ...rest } = options;
  return fetch(url, rest);
}

/**
 * oidc-provider skips the interaction when the browser already has a session and a grant for the client,
 * which would hand a new EHR launch the PREVIOUS launch's patient. Every authorization request that carries
 * launch context (`launch`, or `launch/patient` for a standalone launch) must go through the interaction,
 * where the context is resolved afresh.
 */
function launchAwarePolicy() {
  const policy = interactionPolicy.base();
  const consent = policy.get('consent')!;
  consent.checks.add(
    new interactionPolicy.Check('smart_launch_context', 'every SMART launch resolves its own context', (ctx: KoaContext) => {
      const oidc = ctx.oidc as { params?: { launch?: string; scope?: string }; result?: { consent?: unknown } } | undefined;
      if (oidc?.result?.consent) return interactionPolicy.Check.NO_NEED_TO_PROMPT; // this request's interaction just ran
      const params = oidc?.params ?? {};
      const scopes = (params.scope ?? '').split(' ');
      return params.launch !== undefined || scopes.includes('launch/patient') ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
    }),
  );
  return policy;
}
