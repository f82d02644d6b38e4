/**
 * SMART App Launch end to end against the sandbox's real authorization server (oidc-provider) and FHIR
 * server: EHR launch -> authorize (auto-login) -> callback -> /app with the launched patient.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import type { PendingLaunch } from '../../launch/launch-router.js';
import { randomToken } from '../../launch/pkce.js';
import { CookieJarClient, fixturePatientId, launchVia, sideStores, startLaunchService, startSideRouter, type CapturedService } from './smart-launch-flow.js';

let s: CapturedService;
const diabetic = listFixturePatients().find((p) => p.key === 'diabetic')!;
let patientId: string;

beforeAll(async () => {
  s = await startLaunchService();
  patientId = await fixturePatientId(s.svc, diabetic.mrn);
});
afterAll(async () => s?.svc.close());

function launchUrl(launch?: string, iss = s.svc.sandbox!.fhirBaseUrl): string {
  const q = new URLSearchParams({ iss, ...(launch ? { launch } : {}) });
  return `${s.svc.url}/launch?${q}`;
}

describe('SMART EHR launch', () => {
  it('redirects to the authorize endpoint with state, PKCE S256, aud and launch', async () => {
    const launch = s.svc.sandbox!.auth.createLaunch({ patient: patientId });
    const hop = await new CookieJarClient().get(launchUrl(launch));
    expect(hop.status).toBe(302);
    const to = new URL(hop.location!);
    expect(to.origin).toBe(s.svc.sandbox!.authIssuer);
    const q = to.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe('volmo-smart-app');
    expect(q.get('redirect_uri')).toBe(`${s.svc.url}/launch/callback`);
    expect(q.get('aud')).toBe(s.svc.sandbox!.fhirBaseUrl);
    expect(q.get('launch')).toBe(launch);
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/); // openid asked: the id_token must echo it
    expect(q.get('scope')!.split(' ')).toContain('launch');
  });

  it('opens /app for the launched patient, with the banner name, and never shows or logs the tokens', async () => {
    const launch = s.svc.sandbox!.auth.createLaunch({ patient: patientId });
    const browser = new CookieJarClient();
    const final = await browser.follow(launchUrl(launch));
    expect(final.status).toBe(200);
    expect(new URL(final.url).pathname).toBe('/app');
    expect(final.body).toContain(diabetic.name);
    expect(final.body).toContain('Draft pending clinician review; signing is not available yet');
    expect(final.body).toContain('No AI analysis is available for this patient yet');

    const callback = browser.hops.find((h) => h.url.startsWith(`${s.svc.url}/launch/callback`))!;
    expect(callback.status).toBe(302);
    const cookie = callback.setCookies.find((c) => c.startsWith('volmo_browser='))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/); // http loopback public URL
    expect(callback.location).toMatch(/\/app\?session=[A-Za-z0-9_-]{43}$/);

    // The session only opens with this browser's cookie: the URL alone is refused.
    expect((await new CookieJarClient().get(final.url)).status).toBe(401);

    // The access token is a JWT; none may appear in any page, URL or log line.
    const jwt = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/;
    for (const h of browser.hops.filter((x) => x.url.startsWith(s.svc.url))) {
      expect(h.body).not.toMatch(jwt);
      expect(h.location ?? '').not.toMatch(jwt);
    }
    const logs = s.logs.join('');
    expect(logs).toContain('SMART launch: session started');
    expect(logs).not.toMatch(jwt);
    expect(logs).not.toContain(patientId);
    expect(logs).not.toContain(diabetic.name);
  });

  it('refuses an iss outside the FHIR allowlist with a 400 page before any request', async () => {
    let hits = 0;
    const rogue = http.createServer((_req, res) => {
      hits++;
      res.end('{}');
    });
    await new Promise<void>((r) => rogue.listen(0, '127.0.0.1', r));
    try {
      const iss = `http://127.0.0.1:${(rogue.address() as AddressInfo).port}/fhir`;
      const hop = await new CookieJarClient().get(launchUrl('abc', iss));
      expect(hop.status).toBe(400);
      expect(hop.body).toContain('not one this service is configured to trust');
      for (const bad of ['not a url', 'file:///etc/passwd', `${s.svc.sandbox!.fhirBaseUrl}?x=1`]) {
        expect((await new CookieJarClient().get(launchUrl('abc', bad))).status).toBe(400);
      }
      expect((await new CookieJarClient().get(`${s.svc.url}/launch`)).status).toBe(400);
      expect(hits).toBe(0);
    } finally {
      await new Promise((r) => rogue.close(r));
    }
  });

  it('refuses an unknown or replayed state with a 400 page', async () => {
    const browser = new CookieJarClient();
    const unknown = await browser.get(`${s.svc.url}/launch/callback?code=x&state=${'a'.repeat(43)}`);
    expect(unknown.status).toBe(400);
    expect((await browser.get(`${s.svc.url}/launch/callback?code=x`)).status).toBe(400);

    const launch = s.svc.sandbox!.auth.createLaunch({ patient: patientId });
    const ok = await browser.follow(launchUrl(launch));
    expect(ok.status).toBe(200);
    const callback = browser.hops.find((h) => h.url.startsWith(`${s.svc.url}/launch/callback`))!;
    const replay = await browser.get(callback.url);
    expect(replay.status).toBe(400);
    expect(replay.body).toContain('already used');
  });

  it('a code the EHR has already redeemed is refused when presented again, even with its own PKCE verifier (code replay)', async () => {
    const stores = sideStores();
    const launches: PendingLaunch[] = [];
    const put = stores.pending.put.bind(stores.pending);
    stores.pending.put = async (key, value, ttlMs) => (launches.push(value), put(key, value, ttlMs));
    const side = await startSideRouter(s.svc, { kind: 'none' }, stores);
    try {
      const { browser, callback, callbackUrl } = await launchVia(s.svc, side, patientId);
      expect(callback.status).toBe(302); // the first redemption signs in
      expect(callback.location).toMatch(/\/app\?session=/);
      // The same browser and the same pending launch (its verifier) under a fresh state: only the code is replayed.
      const fresh = randomToken();
      expect(await stores.pending.put(fresh, launches.at(-1)!, 60_000)).toBe(true);
      const replay = await browser.get(`${side.origin}/launch/callback?${new URLSearchParams({ state: fresh, code: callbackUrl.searchParams.get('code')! })}`);
      expect(replay.status).toBe(400);
      expect(replay.body).toContain('The EHR refused the sign-in');
      expect(replay.body).toContain('invalid_grant');
      expect(replay.location).toBeUndefined();
    } finally {
      await side.close();
    }
  });

  it('keeps two launches in one browser apart (sessions keyed per launch)', async () => {
    const other = listFixturePatients().find((p) => p.key === 'glaucoma')!;
    const otherId = await fixturePatientId(s.svc, other.mrn);
    const browser = new CookieJarClient();
    const first = await browser.follow(launchUrl(s.svc.sandbox!.auth.createLaunch({ patient: patientId })));
    // Same browser, authorization-server cookies kept: the second launch must still get its own patient.
    const second = await browser.follow(launchUrl(s.svc.sandbox!.auth.createLaunch({ patient: otherId })));
    expect(second.body).toContain(other.name);
    const again = await browser.get(first.url);
    expect(again.status).toBe(200);
    expect(again.body).toContain(diabetic.name);
    expect(again.body).not.toContain(other.name);
  });

  it('binds state to the browser that started the launch: a callback from another browser is refused', async () => {
    const launch = s.svc.sandbox!.auth.createLaunch({ patient: patientId });
    const victim = new CookieJarClient();
    let hop = await victim.get(launchUrl(launch));
    expect(hop.setCookies.some((c) => c.startsWith('volmo_browser='))).toBe(true);
    // Follow the authorization server's hops in the starting browser, up to (not into) the callback.
    while (hop.location && !hop.location.startsWith(`${s.svc.url}/launch/callback`)) hop = await victim.get(hop.location);
    const callbackUrl = hop.location!;
    expect(callbackUrl).toContain('code=');

    const attacker = new CookieJarClient();
    const refused = await attacker.get(callbackUrl);
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('started in another browser');
    expect(refused.setCookies).toHaveLength(0);
    // The state was one-time: the refused attempt also spent it.
    expect((await victim.get(callbackUrl)).status).toBe(400);

    // A forged browser cookie is no better than none.
    const forged = new CookieJarClient();
    let f = await forged.get(launchUrl(s.svc.sandbox!.auth.createLaunch({ patient: patientId })));
    while (f.location && !f.location.startsWith(`${s.svc.url}/launch/callback`)) f = await forged.get(f.location);
    const res = await fetch(f.location!, { redirect: 'manual', headers: { cookie: `volmo_browser=${'A'.repeat(43)}.${'B'.repeat(43)}` } });
    expect(res.status).toBe(400);
  });

  it('keeps one session cookie per browser across many launches (rotated, never one per launch)', async () => {
    const other = listFixturePatients().find((p) => p.key === 'glaucoma')!;
    const otherId = await fixturePatientId(s.svc, other.mrn);
    const browser = new CookieJarClient();
    const first = await browser.follow(launchUrl(s.svc.sandbox!.auth.createLaunch({ patient: patientId })));
    const values = new Set<string>();
    let last = first;
    for (let i = 0; i < 170; i++) {
      last = await browser.follow(launchUrl(s.svc.sandbox!.auth.createLaunch({ patient: otherId })));
      expect(last.status).toBe(200);
      const set = browser.hops.at(-2)!.setCookies.find((c) => c.startsWith('volmo_browser='));
      if (set) values.add(set.split(';')[0]!);
    }
    const names = new Set(browser.hops.filter((h) => h.url.startsWith(s.svc.url)).flatMap((h) => h.setCookies.map((c) => c.split('=')[0])));
    expect([...names]).toEqual(['volmo_browser']);
    expect(values.size).toBeGreaterThan(100); // rotated at each sign-in
    // The first and the latest session both still open, each with its own patient.
    const again = await browser.get(first.url);
    expect(again.status).toBe(200);
    expect(again.body).toContain(diabetic.name);
    const latest = await browser.get(last.url);
    expect(latest.body).toContain(other.name);
  }, 120_000);
});
