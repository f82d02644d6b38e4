/**
 * The SMART app's token life against a stub EHR on loopback (its discovery, JWKS, token endpoint and one
 * Patient): an expired access token is renewed with the refresh token before the FHIR read; without one, a
 * "re-open VOLMO from the chart" page; a token endpoint refusing the code says the EHR refused (its error code,
 * never its description); an id_token signed by another key is refused.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLaunchRouter } from '../../launch/launch-router.js';
import { createLogger } from '../../src/log.js';
import { createGuardedFetch } from '../../src/net/guarded-fetch.js';
import { CookieJarClient } from './smart-launch-flow.js';

const CLIENT = 'volmo-smart-app';
let ehr: http.Server;
let app: http.Server;
let ehrOrigin: string;
let appOrigin: string;
let key: CryptoKey;
let otherKey: CryptoKey;
let clock = Date.now();
const calls: URLSearchParams[] = [];
let mode: { refuseCode?: boolean; refresh?: boolean; signer?: 'ours' | 'other' } = {};
let validToken = '';
let nonce = '';
let issued = 0;

async function idToken(signer: CryptoKey): Promise<string> {
  return new SignJWT({ fhirUser: `${ehrOrigin}/fhir/Practitioner/dr-1`, nonce })
    .setProtectedHeader({ alg: 'RS256', kid: 'k' })
    .setIssuer(ehrOrigin)
    .setSubject('dr-1')
    .setAudience(CLIENT)
    .setIssuedAt(Math.floor(clock / 1000)) // the router's clock, which the tests move forward
    .setExpirationTime(Math.floor(clock / 1000) + 300)
    .sign(signer);
}

beforeAll(async () => {
  ({ privateKey: key } = await generateKeyPair('RS256', { extractable: true }));
  ({ privateKey: otherKey } = await generateKeyPair('RS256', { extractable: true }));
  const jwk = await exportJWK(key);
  const jwks = { keys: [{ kty: jwk.kty, n: jwk.n, e: jwk.e, kid: 'k', alg: 'RS256', use: 'sig' }] };
  ehr = http.createServer((req, res) => {
    const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.url === '/fhir/.well-known/smart-configuration') {
      return json(200, { issuer: ehrOrigin, jwks_uri: `${ehrOrigin}/jwks`, authorization_endpoint: `${ehrOrigin}/authorize`, token_endpoint: `${ehrOrigin}/token`, code_challenge_methods_supported: ['S256'] });
    }
    if (req.url === '/jwks') return json(200, jwks);
    if (req.url === '/fhir/Patient/p1') {
      if (req.headers.authorization !== `Bearer ${validToken}`) return json(401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
      return json(200, { resourceType: 'Patient', id: 'p1', name: [{ text: 'Jane Roe' }] });
    }
    if (req.url === '/token' && req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', async () => {
        const form = new URLSearchParams(body);
        calls.push(form);
        if (form.get('grant_type') === 'authorization_code' && mode.refuseCode) {
          return json(400, { error: 'invalid_grant', error_description: 'authorization code for Jane Roe (MRN 12345) expired' });
        }
        if (form.get('grant_type') === 'refresh_token' && form.get('refresh_token') !== 'rt-1') return json(400, { error: 'invalid_grant' });
        validToken = `at-${++issued}`;
        json(200, {
          access_token: validToken, token_type: 'Bearer', expires_in: 3600, scope: 'launch openid fhirUser online_access patient/Patient.rs', patient: 'p1',
          ...(form.get('grant_type') === 'authorization_code' ? { id_token: await idToken(mode.signer === 'other' ? otherKey : key), ...(mode.refresh ? { refresh_token: 'rt-1' } : {}) } : {}),
        });
      });
      return;
    }
    json(404, {});
  });
  await new Promise<void>((r) => ehr.listen(0, '127.0.0.1', r));
  ehrOrigin = `http://127.0.0.1:${(ehr.address() as AddressInfo).port}`;

  app = http.createServer();
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appOrigin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  const ex = express();
  ex.use(
    createLaunchRouter({
      publicUrl: appOrigin,
      clientId: CLIENT,
      scopes: 'launch openid fhirUser online_access patient/Patient.rs',
      fetch: createGuardedFetch({ allow: [ehrOrigin], timeoutMs: 3000, retry: { maxRetries: 0 } }),
      isFhirServerAllowed: (u) => u.startsWith(ehrOrigin),
      analyses: { recentForSubject: async () => [] },
      log: createLogger({ level: 'silent' }),
      sessionMaxMs: 8 * 3600_000,
      now: () => clock,
    }),
  );
  app.on('request', ex);
});
afterAll(async () => {
  await new Promise((r) => ehr.close(r));
  await new Promise((r) => app.close(r));
});
beforeEach(() => {
  mode = {};
  calls.length = 0;
});

/** /launch, then the callback as the authorization server would send the browser back (code c1). */
async function signIn(browser = new CookieJarClient()) {
  const start = await browser.get(`${appOrigin}/launch?${new URLSearchParams({ iss: `${ehrOrigin}/fhir`, launch: 'L1' })}`);
  expect(start.status).toBe(302);
  const authorize = new URL(start.location!);
  nonce = authorize.searchParams.get('nonce')!;
  const cb = await browser.get(`${appOrigin}/launch/callback?${new URLSearchParams({ state: authorize.searchParams.get('state')!, code: 'c1' })}`);
  return { browser, cb };
}

describe('SMART app tokens', () => {
  it('renews an expired access token with the refresh token before reading the patient', async () => {
    mode = { refresh: true };
    const { browser, cb } = await signIn();
    expect(cb.status).toBe(302);
    const appUrl = cb.location!;
    expect((await browser.get(appUrl)).body).toContain('Jane Roe');
    expect(calls.map((c) => c.get('grant_type'))).toEqual(['authorization_code']);

    clock += 2 * 3600_000; // the access token (1 h) has expired; the session (8 h) has not
    const page = await browser.get(appUrl);
    expect(page.status).toBe(200);
    expect(page.body).toContain('Jane Roe');
    expect(calls.map((c) => c.get('grant_type'))).toEqual(['authorization_code', 'refresh_token']);
    expect(calls[1]!.get('refresh_token')).toBe('rt-1');
    expect(calls[1]!.get('client_id')).toBe(CLIENT);
  });

  it('without a refresh token, an expired sign-in asks to re-open VOLMO from the chart', async () => {
    const { browser, cb } = await signIn();
    expect(cb.status, cb.body).toBe(302);
    clock += 2 * 3600_000;
    const page = await browser.get(cb.location!);
    expect(page.status).toBe(401);
    expect(page.body).toContain('re-open VOLMO from the chart');
    expect(calls.map((c) => c.get('grant_type'))).toEqual(['authorization_code']);
  });

  it('a token endpoint refusing the code: "the EHR refused" with its error code, never its description', async () => {
    mode = { refuseCode: true };
    const { cb } = await signIn();
    expect(cb.status).toBe(400);
    expect(cb.body).toContain('The EHR refused the sign-in');
    expect(cb.body).toContain('invalid_grant');
    expect(cb.body).not.toContain('could not be reached');
    expect(cb.body).not.toContain('Jane Roe');
    expect(cb.body).not.toContain('12345');
  });

  it('an id_token signed by a key not in the EHR JWKS refuses the sign-in', async () => {
    mode = { signer: 'other' };
    const { cb } = await signIn();
    expect(cb.status).toBe(400);
    expect(cb.body).toContain('identity token');
    expect(cb.setCookies).toHaveLength(0);
  });
});

describe('SMART app page policy', () => {
  it('CSP: scripts and the style by a per-response nonce only; framed only by this origin when no EHR origin is configured', async () => {
    const res = await fetch(`${appOrigin}/app?session=${'a'.repeat(43)}`);
    const csp = res.headers.get('content-security-policy')!;
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    expect(csp).toContain(`style-src 'nonce-${nonce}'`);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toMatch(/frame-ancestors 'self'(;|$)/);
    const html = await res.text();
    expect(html).toContain(`<style nonce="${nonce}">`);
    expect(html).not.toMatch(/<script(?![^>]*nonce=)/);
    const again = (await fetch(`${appOrigin}/app?session=${'a'.repeat(43)}`)).headers.get('content-security-policy')!;
    expect(again).not.toContain(nonce);
  });

  it('frame-ancestors lists exactly the configured EHR origins (VOLMO_APP_FRAME_ANCESTORS)', async () => {
    const { loadConfig } = await import('../../src/config.js');
    expect(loadConfig({ VOLMO_APP_FRAME_ANCESTORS: 'https://ehr.example.org, https://epic.example.com:8443/' }).appFrameAncestors).toEqual(['https://ehr.example.org', 'https://epic.example.com:8443']);
    expect(loadConfig({}).appFrameAncestors).toEqual([]);
    for (const bad of ['*', 'https://*.example.org', 'https://ehr.example.org/app', 'ftp://x']) {
      expect(() => loadConfig({ VOLMO_APP_FRAME_ANCESTORS: bad }), bad).toThrow();
    }
    const ex = express();
    ex.use(createLaunchRouter({
      publicUrl: appOrigin, clientId: CLIENT, scopes: 'launch', fetch: createGuardedFetch({ allow: [ehrOrigin] }), isFhirServerAllowed: () => false,
      analyses: { recentForSubject: async () => [] }, log: createLogger({ level: 'silent' }), frameAncestors: ['https://ehr.example.org', 'https://epic.example.com:8443'],
    }));
    const srv = http.createServer(ex);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/launch`);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-security-policy')).toMatch(/frame-ancestors https:\/\/ehr\.example\.org https:\/\/epic\.example\.com:8443(;|$)/);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});
