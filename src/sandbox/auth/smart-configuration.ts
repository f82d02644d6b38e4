/**
 * The sandbox authorization server's routes and its SMART App Launch 2 discovery document
 * (`/.well-known/smart-configuration`), pure so the FHIR server can serve the same document.
 */

/** oidc-provider routes as configured by the sandbox (relative to the issuer). */
export const AUTH_ROUTES = {
  authorization: '/authorize',
  token: '/token',
  jwks: '/jwks',
  introspection: '/introspect',
  revocation: '/revoke',
  userinfo: '/userinfo',
} as const;

export const SMART_CAPABILITIES = [
  'launch-ehr',
  'launch-standalone',
  'client-public',
  'client-confidential-asymmetric',
  'context-ehr-patient',
  'context-ehr-encounter',
  'context-standalone-patient',
  'context-banner',
  'context-style',
  'permission-v2',
  'permission-v1',
  'permission-patient',
  'permission-user',
  'sso-openid-connect',
] as const;

/** Scopes the sandbox understands, advertised in `scopes_supported` (resource scopes shown by pattern). */
export const SANDBOX_SCOPES_SUPPORTED = [
  'openid',
  'fhirUser',
  'profile',
  'launch',
  'launch/patient',
  'launch/encounter',
  'online_access',
  'offline_access',
  'patient/*.cruds',
  'patient/*.rs',
  'user/*.cruds',
  'user/*.rs',
  'system/*.cruds',
  'system/*.rs',
  'patient/*.read',
  'user/*.read',
  'system/*.read',
] as const;

export const CLIENT_AUTH_SIGNING_ALGS = ['RS384', 'ES384'] as const;

export function authEndpoint(issuer: string, route: keyof typeof AUTH_ROUTES): string {
  return `${issuer.replace(/\/$/, '')}${AUTH_ROUTES[route]}`;
}

export function buildSmartConfiguration(issuer: string): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: authEndpoint(issuer, 'jwks'),
    authorization_endpoint: authEndpoint(issuer, 'authorization'),
    token_endpoint: authEndpoint(issuer, 'token'),
    introspection_endpoint: authEndpoint(issuer, 'introspection'),
    revocation_endpoint: authEndpoint(issuer, 'revocation'),
    userinfo_endpoint: authEndpoint(issuer, 'userinfo'),
    grant_types_supported: ['authorization_code', 'client_credentials'],
    response_types_supported: ['code'],
    scopes_supported: [...SANDBOX_SCOPES_SUPPORTED],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'none'],
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_AUTH_SIGNING_ALGS],
    capabilities: [...SMART_CAPABILITIES],
  };
}
