/**
 * One `private_key_jwt` client assertion (RFC 7523, SMART 2.2 confidential-asymmetric and Backend Services):
 * header alg (RS384 or ES384, the service key's), kid, typ=JWT and optionally jku; claims iss = sub = client_id,
 * aud = the token endpoint, iat, exp at most 5 minutes ahead, a unique jti.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { ServiceKey } from './service-keys.js';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** SMART: exp no more than five minutes after the assertion is made. */
export const MAX_ASSERTION_LIFETIME_S = 300;

export interface ClientAssertionInput {
  key: ServiceKey;
  clientId: string;
  /** The token endpoint the assertion is sent to. */
  audience: string;
  /** Seconds until exp; clamped to 30..300 (default 240). */
  lifetimeS?: number;
  /** Sent as the `jku` header when the EHR registered our JWK Set URL and wants it named. */
  jku?: string;
  /** Epoch ms (tests). */
  now?: number;
}

export function signClientAssertion(p: ClientAssertionInput): Promise<string> {
  const lifetime = Math.min(MAX_ASSERTION_LIFETIME_S, Math.max(30, p.lifetimeS ?? 240));
  const iat = Math.floor((p.now ?? Date.now()) / 1000);
  const header: { alg: string; kid: string; typ: string; jku?: string } = { alg: p.key.alg, kid: p.key.kid, typ: 'JWT' };
  if (p.jku) header.jku = p.jku;
  return new SignJWT({})
    .setProtectedHeader(header)
    .setIssuer(p.clientId)
    .setSubject(p.clientId)
    .setAudience(p.audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + lifetime)
    .setJti(randomUUID())
    .sign(p.key.privateKey);
}
