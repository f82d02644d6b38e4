import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { silentLogger } from '../../src/log.js';
import { startSmartSandbox, type SmartSandbox } from '../../src/sandbox/fhir/smart-sandbox.js';

let sandbox: SmartSandbox;
let jwksServer: Server;
let rsKey: CryptoKey;
let esKey: CryptoKey;
let otherRsKey: CryptoKey;
let tokenUrl: string;

async function keyPair(alg: 'RS384' | 'ES384', kid: string): Promise<{ privateKey: CryptoKey; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function assertion(clientId: string, key: CryptoKey, alg: string, kid: string, lifetimeS = 240) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenUrl)
    .setIssuedAt(now)
    .setExpirationTime(now + lifetimeS)
    .sign(key);
}

async function requestToken(clientAssertion: string, scope = 'system/*.rs') {
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion,
    }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

beforeAll(async () => {
  const rs = await keyPair('RS384', 'rs-1');
  const es = await keyPair('ES384', 'es-1');
  const other = await keyPair('RS384', 'rs-1'); // same kid, different key: a forged signature
  rsKey = rs.privateKey;
  esKey = es.privateKey;
  otherRsKey = other.privateKey;
  jwksServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [es.publicJwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  sandbox = await startSmartSandbox({
    log: silentLogger(),
    clients: [
      { clientId: 'backend-rs', kind: 'backend', scope: 'system/*.rs', jwks: { keys: [rs.publicJwk] } },
      { clientId: 'backend-es', kind: 'backend', scope: 'system/*.rs system/DiagnosticReport.c', jwksUri },
    ],
  });
  const config = (await (await fetch(`${sandbox.auth.issuer}/.well-known/smart-configuration`)).json()) as Record<string, any>;
  tokenUrl = config.token_endpoint;
  await sandbox.fhir.loadBundle({
    resourceType: 'Bundle',
    type: 'collection',
    entry: [{ resource: { resourceType: 'Patient', id: 'bs-1', name: [{ family: 'Backend' }] } }],
  });
});

afterAll(async () => {
  await sandbox?.close();
  await new Promise((r) => jwksServer?.close(r));
});

describe('SMART configuration', () => {
  it('serves the SMART App Launch 2 discovery document on the auth server and the FHIR base', async () => {
    for (const url of [`${sandbox.auth.issuer}/.well-known/smart-configuration`, `${sandbox.fhir.baseUrl}/.well-known/smart-configuration`]) {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const c = (await res.json()) as Record<string, any>;
      expect(c.issuer).toBe(sandbox.auth.issuer);
      expect(c.jwks_uri).toBe(sandbox.auth.jwksUrl);
      expect(c.authorization_endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/authorize$/);
      expect(c.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'client_credentials']));
      expect(c.code_challenge_methods_supported).toEqual(['S256']);
      expect(c.token_endpoint_auth_methods_supported).toContain('private_key_jwt');
      expect(c.token_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS384', 'ES384']));
      for (const cap of ['launch-ehr', 'launch-standalone', 'client-public', 'client-confidential-asymmetric', 'context-ehr-patient',
        'context-ehr-encounter', 'context-standalone-patient', 'permission-v2', 'permission-v1', 'sso-openid-connect']) {
        expect(c.capabilities).toContain(cap);
      }
    }
    const jwks = (await (await fetch(sandbox.auth.jwksUrl)).json()) as { keys: JWK[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
  });
});

describe('SMART Backend Services', () => {
  it('issues a JWT access token for an RS384 assertion (inline jwks) that the FHIR server accepts', async () => {
    const { status, body } = await requestToken(await assertion('backend-rs', rsKey, 'RS384', 'rs-1'));
    expect(status).toBe(200);
    expect(body.token_type).toBe('Bearer');
    expect(body.scope).toBe('system/*.rs');
    expect(body.expires_in).toBeLessThanOrEqual(300);
    expect(body.refresh_token).toBeUndefined();
    expect(decodeProtectedHeader(body.access_token).typ).toBe('at+jwt');
    const claims = decodeJwt(body.access_token);
    expect(claims.iss).toBe(sandbox.auth.issuer);
    expect(claims.aud).toBe(sandbox.fhir.baseUrl);
    expect(claims.client_id).toBe('backend-rs');

    const read = await fetch(`${sandbox.fhir.baseUrl}/Patient/bs-1`, { headers: { authorization: `Bearer ${body.access_token}` } });
    expect(read.status).toBe(200);
    // system/*.rs grants no create
    const write = await fetch(`${sandbox.fhir.baseUrl}/Patient`, {
      method: 'POST',
      headers: { authorization: `Bearer ${body.access_token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient' }),
    });
    expect(write.status).toBe(403);
  });

  it('issues a token for an ES384 assertion verified through the client jwks_uri', async () => {
    const { status, body } = await requestToken(
      await assertion('backend-es', esKey, 'ES384', 'es-1'),
      'system/Observation.rs system/DiagnosticReport.c system/Patient.cruds',
    );
    expect(status).toBe(200);
    // only what the registration covers is granted
    expect(body.scope.split(' ').sort()).toEqual(['system/DiagnosticReport.c', 'system/Observation.rs']);
  });

  it('refuses a replayed client assertion (same jti)', async () => {
    const jwt = await assertion('backend-rs', rsKey, 'RS384', 'rs-1');
    expect((await requestToken(jwt)).status).toBe(200);
    const replay = await requestToken(jwt);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');
  });

  it('refuses a wrongly signed assertion, a disabled algorithm and a too-long-lived assertion', async () => {
    const forged = await requestToken(await assertion('backend-rs', otherRsKey, 'RS384', 'rs-1'));
    expect(forged.status).toBe(401);
    expect(forged.body.error).toBe('invalid_client');
    // the registered key itself, but used with RS256 (not enabled for client authentication)
    const sameKeyRs256 = (await importJWK(await exportJWK(rsKey), 'RS256')) as CryptoKey;
    const rs256 = await requestToken(await assertion('backend-rs', sameKeyRs256, 'RS256', 'rs-1'));
    expect(rs256.status).toBe(401);
    const longLived = await requestToken(
      await assertion('backend-rs', rsKey, 'RS384', 'rs-1', 3600),
    );
    expect(longLived.status).toBe(401);
    const unknownClient = await requestToken(await assertion('nobody', rsKey, 'RS384', 'rs-1'));
    expect(unknownClient.status).toBe(401);
  });

  it('the FHIR server refuses tokens it did not issue, or with a tampered signature', async () => {
    const { body } = await requestToken(await assertion('backend-rs', rsKey, 'RS384', 'rs-1'));
    const [h, p, s] = (body.access_token as string).split('.');
    const tamperedPayload = Buffer.from(JSON.stringify({ ...decodeJwt(body.access_token), scope: 'system/*.cruds' })).toString('base64url');
    for (const token of [`${h}.${tamperedPayload}.${s}`, await assertion('backend-rs', rsKey, 'RS384', 'rs-1'), `${h}.${p}`]) {
      const res = await fetch(`${sandbox.fhir.baseUrl}/Patient/bs-1`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });
});
