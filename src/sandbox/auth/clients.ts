/** Sandbox client registrations and their translation into oidc-provider client metadata. */
import type { JSONWebKeySet } from 'jose';
import { AppError } from '../../errors.js';
import { parseScopes } from '../smart-scopes.js';

export interface SandboxClient {
  clientId: string;
  redirectUris?: string[];
  /** Public keys for private_key_jwt (confidential-asymmetric and backend clients): inline ... */
  jwks?: JSONWebKeySet;
  /** ... or fetched from a URL (loopback only in the sandbox). */
  jwksUri?: string;
  /** The most this client may be granted, e.g. `launch openid fhirUser patient/*.rs` or `system/*.rs`. */
  scope: string;
  kind: 'public' | 'confidential-asymmetric' | 'backend';
}

/** Checks a registration; throws AppError('config_invalid') naming the client and the problem. */
export function assertValidClient(client: SandboxClient): void {
  const fail = (msg: string): never => {
    throw new AppError('config_invalid', `sandbox client ${JSON.stringify(client.clientId)}: ${msg}`);
  };
  if (!/^[A-Za-z0-9._:-]{1,128}$/.test(client.clientId ?? '')) fail('clientId must be 1-128 URL-safe characters');
  try {
    parseScopes(client.scope);
  } catch (err) {
    fail((err as Error).message);
  }
  if (client.kind !== 'backend' && !(client.redirectUris?.length)) fail('an app client needs redirectUris');
  if (client.kind !== 'public' && !client.jwks === !client.jwksUri) fail('give exactly one of jwks or jwksUri');
  if (client.kind === 'public' && (client.jwks || client.jwksUri)) fail('a public client has no keys');
  for (const uri of [...(client.redirectUris ?? []), ...(client.jwksUri ? [client.jwksUri] : [])]) {
    if (!URL.canParse(uri)) fail(`not an absolute URL: ${uri}`);
  }
}

export function toClientMetadata(client: SandboxClient): Record<string, unknown> {
  assertValidClient(client);
  const keys = client.jwks ? { jwks: client.jwks } : client.jwksUri ? { jwks_uri: client.jwksUri } : {};
  if (client.kind === 'backend') {
    return {
      client_id: client.clientId,
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      ...keys,
    };
  }
  return {
    client_id: client.clientId,
    token_endpoint_auth_method: client.kind === 'public' ? 'none' : 'private_key_jwt',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: client.redirectUris,
    ...keys,
  };
}
