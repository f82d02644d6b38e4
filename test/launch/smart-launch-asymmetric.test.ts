/**
 * SMART 2.2 confidential-asymmetric client authentication against the sandbox's real authorization server
 * (oidc-provider), with the SMART app registered `private_key_jwt` and this service's public keys:
 * the launch succeeds with a signed client assertion (a dedicated RS384 key, served next to the service key at
 * /.well-known/jwks.json); an expired access token is renewed with the refresh token *and* an assertion; an
 * assertion signed by another key, or none at all (a public client's form), is refused: "the EHR refused".
 *
 * The refresh and the refusals run a second launch router in this process (its own clock and key), whose
 * redirect URI is the service's (the one registered): the browser's callback is delivered to that router.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SmartClientAuth } from '../../launch/smart-oauth.js';
import { generateServiceKey, loadServiceKey, type ServiceKey } from '../../src/fhir/service-keys.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { CookieJarClient, fixturePatientId, launchVia, sideStores, startLaunchService, startSideRouter, type CapturedService, type SideRouter } from './smart-launch-flow.js';

let s: CapturedService;
let smartKey: ServiceKey;
const diabetic = listFixturePatients().find((p) => p.key === 'diabetic')!;
let patientId: string;

beforeAll(async () => {
  const { privateKey } = await generateKeyPair('RS384', { extractable: true });
  const file = join(mkdtempSync(join(tmpdir(), 'volmo-smart-key-')), 'smart-client.jwk.json');
  writeFileSync(file, JSON.stringify({ ...(await exportJWK(privateKey)), alg: 'RS384' }), { mode: 0o600 });
  s = await startLaunchService({ VOLMO_SMART_CLIENT_AUTH: 'private_key_jwt', VOLMO_SMART_CLIENT_KEY_FILE: file });
  smartKey = await loadServiceKey({ file });
  patientId = await fixturePatientId(s.svc, diabetic.mrn);
}, 60_000);
afterAll(async () => s?.svc.close());

describe('SMART app as a confidential-asymmetric client (private_key_jwt)', () => {
  it('serves the assertion key in the JWK Set and signs in through the real authorization server', async () => {
    const jwks = (await (await fetch(`${s.svc.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string; alg: string; d?: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toContain(smartKey.kid);
    expect(jwks.keys.find((k) => k.kid === smartKey.kid)!.alg).toBe('RS384');
    expect(jwks.keys.length).toBe(2); // the Backend Services key and the dedicated SMART app key
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);

    const browser = new CookieJarClient();
    const final = await browser.follow(`${s.svc.url}/launch?${new URLSearchParams({ iss: s.svc.sandbox!.fhirBaseUrl, launch: s.svc.sandbox!.auth.createLaunch({ patient: patientId }) })}`);
    expect(final.status).toBe(200);
    expect(new URL(final.url).pathname).toBe('/app');
    expect(final.body).toContain(diabetic.name);
    expect(s.logs.join('')).not.toContain('SMART launch refused by the EHR');
  });

  it('the authorization server refuses a public client form and an assertion signed by another key: "the EHR refused"', async () => {
    const other = await generateServiceKey('RS384');
    for (const auth of [{ kind: 'none' }, { kind: 'private_key_jwt', key: other }] as SmartClientAuth[]) {
      const side = await startSideRouter(s.svc, auth);
      try {
        const { callback } = await launchVia(s.svc, side, patientId);
        expect(callback.status).toBe(400);
        expect(callback.body).toContain('The EHR refused the sign-in');
        expect(callback.body).toContain('invalid_client');
        expect(callback.setCookies).toHaveLength(0);
      } finally {
        await side.close();
      }
    }
  });

  it('renews an expired access token with the refresh token and a fresh assertion; another key cannot', async () => {
    const stores = sideStores();
    const right = await startSideRouter(s.svc, { kind: 'private_key_jwt', key: smartKey }, stores);
    const wrong = await startSideRouter(s.svc, { kind: 'private_key_jwt', key: await generateServiceKey('ES384') }, stores);
    try {
      const { browser, callback } = await launchVia(s.svc, right, patientId);
      expect(callback.status).toBe(302);
      const appPath = callback.location!.slice(new URL(callback.location!).origin.length);
      const cookie = browser.hops.flatMap((h) => h.setCookies).filter((c) => c.startsWith('volmo_browser=')).map((c) => c.split(';')[0]!).at(-1)!;
      const open = async (side: SideRouter) => {
        const res = await fetch(`${side.origin}${appPath}`, { headers: { cookie } });
        return { status: res.status, body: await res.text() };
      };
      expect((await open(right)).status).toBe(200);
      // Two hours on (the sandbox's access tokens last one hour): the session must renew its token.
      right.clock.t += 2 * 3600_000;
      wrong.clock.t = right.clock.t;
      const refused = await open(wrong);
      expect(refused.status).toBe(401);
      expect(refused.body).toContain('re-open VOLMO from the chart');
      expect(wrong.logs.join('')).toContain('token refresh failed');
      expect(wrong.logs.join('')).toContain('invalid_client');

      const renewed = await open(right);
      expect(renewed.status).toBe(200);
      expect(renewed.body).toContain(diabetic.name);
      expect(right.logs.join('')).toContain('access token refreshed');
    } finally {
      await right.close();
      await wrong.close();
    }
  });
});
