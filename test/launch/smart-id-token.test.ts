/**
 * id_token validation (launch/id-token.ts): signature against the JWKS served on loopback and read through the
 * guarded fetch, iss, aud = client id, exp, nonce; only then fhirUser. The token response's own `fhirUser`
 * field is never trusted.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwksCache, validateIdToken } from '../../launch/id-token.js';
import { parseTokenResponse } from '../../launch/smart-oauth.js';
import { createGuardedFetch } from '../../src/net/guarded-fetch.js';

const ISSUER = 'https://auth.ehr.example';
const CLIENT = 'volmo-smart-app';
let server: http.Server;
let jwksUri: string;
let key: CryptoKey;
let other: CryptoKey;
let jwksHits = 0;
const NOW = Date.UTC(2026, 0, 1);

beforeAll(async () => {
  ({ privateKey: key } = await generateKeyPair('RS256', { extractable: true }));
  ({ privateKey: other } = await generateKeyPair('RS256', { extractable: true }));
  const { publicKey } = { publicKey: await exportJWK(key) };
  const pub = { kty: publicKey.kty, n: publicKey.n, e: publicKey.e, kid: 'k1', alg: 'RS256', use: 'sig' };
  server = http.createServer((_req, res) => {
    jwksHits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [pub] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});
afterAll(() => new Promise((r) => server.close(r)));

function idToken(claims: Record<string, unknown>, opts: { signer?: CryptoKey; kid?: string; iat?: number; exp?: number } = {}) {
  const iat = opts.iat ?? Math.floor(NOW / 1000);
  return new SignJWT({ fhirUser: 'https://fhir.ehr.example/r4/Practitioner/dr-7', nonce: 'n-1', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'k1' })
    .setIssuer((claims.iss as string | undefined) ?? ISSUER)
    .setSubject('user-7')
    .setAudience((claims.aud as string | undefined) ?? CLIENT)
    .setIssuedAt(iat)
    .setExpirationTime(opts.exp ?? iat + 300)
    .sign(opts.signer ?? key);
}

describe('id_token validation', () => {
  const jwks = () => new JwksCache(createGuardedFetch({ allow: [jwksUri], timeoutMs: 2000, retry: { maxRetries: 0 } }), () => NOW);
  const expect_ = { issuer: ISSUER, clientId: CLIENT, nonce: 'n-1', now: NOW };

  it('accepts a token signed by the JWKS key with the right iss, aud, exp and nonce, and gives its fhirUser', async () => {
    expect(await validateIdToken(jwks(), await idToken({}), { ...expect_, jwksUri })).toEqual({ fhirUser: 'Practitioner/dr-7' });
    expect(await validateIdToken(jwks(), await idToken({ fhirUser: 'Patient/p-1' }), { ...expect_, jwksUri })).toEqual({});
  });

  it('refuses another key, issuer, audience, an expired token and a wrong nonce', async () => {
    const v = (t: string) => validateIdToken(jwks(), t, { ...expect_, jwksUri });
    await expect(v(await idToken({}, { signer: other }))).rejects.toThrow(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
    await expect(v(await idToken({ iss: 'https://evil.example' }))).rejects.toThrow(/id_token refused: ERR_JWT_CLAIM_VALIDATION_FAILED \(iss\)/);
    await expect(v(await idToken({ aud: 'another-app' }))).rejects.toThrow(/\(aud\)/);
    await expect(v(await idToken({}, { iat: Math.floor(NOW / 1000) - 3600, exp: Math.floor(NOW / 1000) - 600 }))).rejects.toThrow(/ERR_JWT_EXPIRED/);
    await expect(v(await idToken({ nonce: 'replayed' }))).rejects.toThrow(/nonce mismatch/);
    // An unsigned token (alg none) is never accepted.
    const [h, p] = [{ alg: 'none' }, { iss: ISSUER, aud: CLIENT, sub: 'x', exp: NOW / 1000 + 60, iat: NOW / 1000, nonce: 'n-1', fhirUser: 'Practitioner/x' }].map((o) => Buffer.from(JSON.stringify(o)).toString('base64url'));
    await expect(v(`${h}.${p}.`)).rejects.toThrow(/id_token refused/);
  });

  it('keeps the JWKS a while and re-reads it once for an unknown key id', async () => {
    const cache = jwks();
    const before = jwksHits;
    await validateIdToken(cache, await idToken({}), { ...expect_, jwksUri });
    await validateIdToken(cache, await idToken({}), { ...expect_, jwksUri });
    expect(jwksHits - before).toBe(1);
    await expect(validateIdToken(cache, await idToken({}, { kid: 'rotated' }), { ...expect_, jwksUri })).rejects.toThrow(/id_token refused/);
    expect(jwksHits - before).toBe(2);
  });

  it('a JWKS outside the outbound allowlist is never fetched', async () => {
    const cache = new JwksCache(createGuardedFetch({ allow: ['http://127.0.0.1:1/elsewhere'], timeoutMs: 2000, retry: { maxRetries: 0 } }), () => NOW);
    const before = jwksHits;
    await expect(validateIdToken(cache, await idToken({}), { ...expect_, jwksUri })).rejects.toThrow();
    expect(jwksHits).toBe(before);
  });

  it('the token response itself never names the clinician (fhirUser field or unvalidated id_token)', async () => {
    const body = { access_token: 'tok', token_type: 'Bearer', fhirUser: 'Practitioner/forged', id_token: await idToken({}, { signer: other }) };
    expect(parseTokenResponse(body)).not.toHaveProperty('fhirUser');
  });
});
