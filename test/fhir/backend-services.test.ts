import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLocalJWKSet, decodeProtectedHeader, exportPKCS8, generateKeyPair, exportJWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createGuardedFetch, type GuardedFetch } from '../../src/net/guarded-fetch.js';
import { BackendServicesTokenSource } from '../../src/fhir/backend-services.js';
import { HttpFhirClient } from '../../src/fhir/http-client.js';
import { generateServiceKey, loadServiceKey, publicJwks, type ServiceKey } from '../../src/fhir/service-keys.js';
import { json, startScriptedServer, type ScriptedServer } from '../net/helpers/scripted-server.js';

let srv: ScriptedServer;
let gf: GuardedFetch;
let es: ServiceKey;
let rs: ServiceKey;
const issued: string[] = [];
const seenJti = new Set<string>();
const logLines: string[] = [];
const logger = createLogger({ level: 'debug', destination: new Writable({ write(c, _e, cb) { logLines.push(String(c)); cb(); } }) });
let expiresIn = 300;

beforeAll(async () => {
  srv = await startScriptedServer();
  gf = createGuardedFetch({ allow: [srv.origin], timeoutMs: 2000 });
  es = await generateServiceKey('ES384');
  rs = await generateServiceKey('RS384');
  const jwks = createLocalJWKSet(publicJwks(es, rs));
  srv.route('/fhir/.well-known/smart-configuration', (_q, r) =>
    json(r, 200, { token_endpoint: `${srv.origin}/auth/token`, token_endpoint_auth_methods_supported: ['private_key_jwt'] }));
  srv.route('/auth/token', async (_q, r, body) => {
    const form = new URLSearchParams(body);
    try {
      expect(form.get('grant_type')).toBe('client_credentials');
      expect(form.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
      const { payload, protectedHeader } = await jwtVerify(form.get('client_assertion')!, jwks, {
        audience: `${srv.origin}/auth/token`, issuer: 'volmo-client', subject: 'volmo-client', algorithms: ['ES384', 'RS384'],
      });
      expect(protectedHeader.typ).toBe('JWT');
      expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
      if (seenJti.has(payload.jti!)) return json(r, 400, { error: 'invalid_grant', error_description: 'jti replay' });
      seenJti.add(payload.jti!);
      const token = `backend-token-${issued.length + 1}-${'x'.repeat(20)}`;
      issued.push(token);
      json(r, 200, { access_token: token, token_type: 'bearer', expires_in: expiresIn, scope: form.get('scope') });
    } catch {
      json(r, 401, { error: 'invalid_client', error_description: 'assertion secret stuff' });
    }
  });
  srv.route('/fhir/Patient/p1', (q, r) => json(r, 200, { resourceType: 'Patient', id: 'p1', auth: q.headers.authorization }));
  srv.route('/bad/.well-known/smart-configuration', (_q, r) => r.writeHead(200, { 'content-type': 'text/html' }).end('<html>'));
});
afterAll(async () => { gf.close(); await srv.close(); });

describe('BackendServicesTokenSource', () => {
  it('discovers the token URL, signs a valid ES384 assertion, and reuses the token', async () => {
    let now = Date.now();
    const src = new BackendServicesTokenSource({ fetch: gf, fhirBaseUrl: `${srv.origin}/fhir`, clientId: 'volmo-client', scope: 'system/Patient.rs', key: es, now: () => now, logger });
    const fhir = new HttpFhirClient({ baseUrl: `${srv.origin}/fhir`, fetch: gf, tokens: src });
    const a = (await fhir.read('Patient', 'p1')) as unknown as { auth: string };
    const b = (await fhir.read('Patient', 'p1')) as unknown as { auth: string };
    expect(a.auth).toBe(b.auth);
    expect(src.tokensIssued).toBe(1);
    now += 250_000; // within 60 s of expiry -> refresh
    await fhir.read('Patient', 'p1');
    expect(src.tokensIssued).toBe(2);
  });

  it('shares one token request between concurrent callers', async () => {
    const src = new BackendServicesTokenSource({ fetch: gf, fhirBaseUrl: `${srv.origin}/fhir`, clientId: 'volmo-client', scope: 's', key: rs });
    const tokens = await Promise.all([src.getToken(), src.getToken(), src.getToken()]);
    expect(new Set(tokens).size).toBe(1);
    expect(src.tokensIssued).toBe(1);
  });

  it('makes assertions with unique jti, aud = token URL, exp <= 5 min and the jku header', async () => {
    const src = new BackendServicesTokenSource({ fetch: gf, fhirBaseUrl: `${srv.origin}/fhir`, clientId: 'c', scope: 's', key: rs, jku: 'https://volmo.example/.well-known/jwks.json', assertionLifetimeS: 3600 });
    const a1 = await src.createAssertion('https://ehr.example/token');
    const a2 = await src.createAssertion('https://ehr.example/token');
    const jwks = createLocalJWKSet(publicJwks(rs));
    const v1 = await jwtVerify(a1, jwks, { audience: 'https://ehr.example/token' });
    const v2 = await jwtVerify(a2, jwks);
    expect(v1.payload.jti).not.toBe(v2.payload.jti);
    expect(v1.payload.exp! - v1.payload.iat!).toBe(300);
    expect(decodeProtectedHeader(a1)).toMatchObject({ alg: 'RS384', kid: rs.kid, typ: 'JWT', jku: 'https://volmo.example/.well-known/jwks.json' });
  });

  it('short-lived tokens are still cached for part of their life', async () => {
    expiresIn = 30;
    let now = Date.now();
    const src = new BackendServicesTokenSource({ fetch: gf, fhirBaseUrl: `${srv.origin}/fhir`, clientId: 'volmo-client', scope: 's', key: es, now: () => now });
    await src.getToken();
    now += 10_000;
    await src.getToken();
    expect(src.tokensIssued).toBe(1);
    now += 10_000;
    await src.getToken();
    expect(src.tokensIssued).toBe(2);
    expiresIn = 300;
  });

  it('reports a refused client with the OAuth error code only', async () => {
    const other = await generateServiceKey('ES384'); // not in the server's JWKS
    const src = new BackendServicesTokenSource({ fetch: gf, fhirBaseUrl: `${srv.origin}/fhir`, clientId: 'volmo-client', scope: 's', key: other, logger });
    const err = (await src.getToken().catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe('upstream_refused');
    expect(err.message).toContain('invalid_client');
    expect(err.message).not.toContain('secret stuff');
  });

  it('rejects a non-JSON SMART configuration', async () => {
    const src = new BackendServicesTokenSource({ fetch: gf, fhirBaseUrl: `${srv.origin}/bad`, clientId: 'c', scope: 's', key: es });
    await expect(src.getToken()).rejects.toMatchObject({ reason: 'bad_body' });
  });

  it('refuses a token URL outside the allowlist before connecting', async () => {
    const src = new BackendServicesTokenSource({ fetch: gf, fhirBaseUrl: `${srv.origin}/fhir`, tokenUrl: 'http://169.254.169.254/token', clientId: 'c', scope: 's', key: es });
    await expect(src.getToken()).rejects.toMatchObject({ code: 'upstream_refused' });
  });

  it('never logs tokens or assertions', () => {
    const all = logLines.join('\n');
    for (const t of issued) expect(all).not.toContain(t);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
  });
});

describe('service keys', () => {
  it('publishes only public members, with kid/alg/use', async () => {
    const jwks = publicJwks(es, rs);
    expect(jwks.keys).toHaveLength(2);
    for (const k of jwks.keys) {
      for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(m);
      expect(k.use).toBe('sig');
    }
    expect(jwks.keys.map((k) => k.alg)).toEqual(['ES384', 'RS384']);
    expect(jwks.keys[0].crv).toBe('P-384');
  });

  it('loads PEM and JWK files and keeps a stable kid', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'volmo-keys-'));
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    await writeFile(join(dir, 'k.pem'), await exportPKCS8(privateKey));
    const fromPem = await loadServiceKey({ file: join(dir, 'k.pem') });
    expect(fromPem.alg).toBe('ES384');
    const jwk = { ...(await exportJWK(privateKey)), kid: 'my-kid' };
    await writeFile(join(dir, 'k.json'), JSON.stringify(jwk));
    const fromJwk = await loadServiceKey({ file: join(dir, 'k.json') });
    expect([fromJwk.alg, fromJwk.kid]).toEqual(['ES384', 'my-kid']);
    expect(fromPem.publicJwk.x).toBe(fromJwk.publicJwk.x);
    const again = await loadServiceKey({ file: join(dir, 'k.pem') });
    expect(again.kid).toBe(fromPem.kid);
    const rsa = await generateKeyPair('RS384', { extractable: true });
    expect((await loadServiceKey({ pem: await exportPKCS8(rsa.privateKey) })).alg).toBe('RS384');
  });

  it('rejects bad key material with config_invalid and no key text', async () => {
    const { publicKey } = await generateKeyPair('ES384', { extractable: true });
    const cases = [
      { pem: '-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----' },
      { pem: '-----BEGIN PRIVATE KEY-----\nnotbase64!!\n-----END PRIVATE KEY-----' },
      { jwk: await exportJWK(publicKey) },
      { jwk: '{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}' },
      { file: '/nonexistent/key.pem' },
      {},
    ];
    for (const c of cases) {
      const err = await loadServiceKey(c).catch((e: unknown) => e as { code: string; message: string });
      expect((err as { code: string }).code).toBe('config_invalid');
      expect((err as { message: string }).message).not.toContain('notbase64');
    }
  });
});
