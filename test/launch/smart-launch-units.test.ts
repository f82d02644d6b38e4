/** The SMART launch's pure parts: PKCE, state/session store, token response checks, cookies, pages, drafts by patient. */
import { describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../../src/analysis/analyse.js';
import { AnalysisCache } from '../../src/analysis/analysis-cache.js';
import type { GuardedFetch } from '../../src/net/guarded-fetch.js';
import { patientView } from '../../launch/app-page.js';
import { appPage } from '../../launch/pages.js';
import { escapeHtml } from '../../src/reports/note.js';
import { codeChallengeS256, randomToken, TOKEN_RE } from '../../launch/pkce.js';
import { BrowserBinding, browserCookie, readCookie, type BrowserRecord } from '../../launch/session-cookie.js';
import { authorizeUrl, discoverSmartConfiguration, exchangeCode, parseTokenResponse, refreshAccessToken } from '../../launch/smart-oauth.js';
import { generateServiceKey } from '../../src/fhir/service-keys.js';
import { importJWK, jwtVerify } from 'jose';
import { MemoryKeyedStore } from '../../launch/ttl-store.js';

describe('PKCE and random values', () => {
  it('S256 matches the RFC 7636 appendix B example; tokens are 256-bit base64url and distinct', () => {
    expect(codeChallengeS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
    const a = randomToken();
    expect(a).toMatch(TOKEN_RE);
    expect(randomToken()).not.toBe(a);
  });
});

describe('keyed store', () => {
  it('expires entries, takes once, and stays bounded without evicting live entries', async () => {
    let now = 0;
    const store = new MemoryKeyedStore<number>({ maxEntries: 2, now: () => now });
    await store.put('a', 1, 100);
    expect(await store.get('a')).toBe(1);
    expect(await store.take('a')).toBe(1);
    expect(await store.take('a')).toBeUndefined();
    await store.put('b', 2, 100);
    now = 100;
    expect(await store.get('b')).toBeUndefined();
    expect(await Promise.all(['c', 'd', 'e'].map((k) => store.put(k, 3, 100)))).toEqual([true, true, false]);
    expect(store.size).toBe(2);
    expect(await store.get('c')).toBe(3); // a flood cannot push out a live sign-in
    expect(await store.get('e')).toBeUndefined();
    now = 300; // both expired: room again
    expect(await store.put('f', 4, 100)).toBe(true);
    expect(() => new MemoryKeyedStore({ maxEntries: 0 })).toThrow(RangeError);
  });
});

describe('authorize URL and token response', () => {
  it('keeps the endpoint query and adds every SMART parameter', () => {
    const u = new URL(authorizeUrl('https://ehr.example/oauth2/authorize?tenant=t1', { clientId: 'c', redirectUri: 'https://app/cb', scope: 'launch openid', state: 's', iss: 'https://ehr.example/fhir', codeChallenge: 'x' }));
    expect(Object.fromEntries(u.searchParams)).toEqual({ tenant: 't1', response_type: 'code', client_id: 'c', redirect_uri: 'https://app/cb', scope: 'launch openid', state: 's', aud: 'https://ehr.example/fhir', code_challenge: 'x', code_challenge_method: 'S256' });
  });

  it('checks the token response and names fields, never values', () => {
    const ok = parseTokenResponse({ access_token: 'tok', token_type: 'bearer', expires_in: 3240, patient: 'p-1', need_patient_banner: false, scope: 'launch' });
    expect(ok).toMatchObject({ access_token: 'tok', expires_in: 3240, patient: 'p-1', need_patient_banner: false });
    expect(parseTokenResponse({ access_token: 'tok', token_type: 'Bearer', expires_in: 'soon' }).expires_in).toBeUndefined();
    expect(() => parseTokenResponse({ token_type: 'Bearer' })).toThrow(/no access_token/);
    expect(() => parseTokenResponse({ access_token: 'tok', token_type: 'MAC' })).toThrow(/not Bearer/);
    expect(() => parseTokenResponse({ access_token: 'secret-tok', token_type: 'Bearer', patient: '../x' })).toThrow(/patient is not a FHIR id/);
    try {
      parseTokenResponse({ access_token: 'secret-tok', token_type: 'Bearer', patient: '../x' });
    } catch (e) {
      expect((e as Error).message).not.toContain('secret-tok');
    }
  });

  it('refuses a SMART configuration without S256 or without endpoints', async () => {
    const fake = (doc: unknown): GuardedFetch => {
      const f = (async () => ({ status: 200, ok: true, url: '', body: Buffer.from(''), header: () => undefined, text: () => JSON.stringify(doc) })) as unknown as GuardedFetch;
      return f;
    };
    const endpoints = { authorization_endpoint: 'https://a/authorize', token_endpoint: 'https://a/token' };
    await expect(discoverSmartConfiguration(fake({ ...endpoints, code_challenge_methods_supported: ['plain'] }), 'https://f')).rejects.toThrow(/S256/);
    await expect(discoverSmartConfiguration(fake({ authorization_endpoint: 'javascript:x', token_endpoint: 'https://a/token' }), 'https://f')).rejects.toThrow(/authorization_endpoint/);
    await expect(discoverSmartConfiguration(fake('<html>'), 'https://f')).rejects.toThrow(/not a JSON object/);
    expect((await discoverSmartConfiguration(fake({ ...endpoints, code_challenge_methods_supported: ['S256'] }), 'https://f')).token_endpoint).toBe('https://a/token');
  });

  it('token requests: a public client sends client_id; private_key_jwt sends a fresh RS384/ES384 assertion on the code exchange and the refresh', async () => {
    const forms: URLSearchParams[] = [];
    const recording = (async (_url: string, init: { body: string }) => {
      forms.push(new URLSearchParams(init.body));
      return { status: 200, ok: true, url: '', body: Buffer.from(''), header: () => undefined, text: () => JSON.stringify({ access_token: 'a', token_type: 'Bearer' }) };
    }) as unknown as GuardedFetch;
    const tokenUrl = 'https://ehr.example/oauth2/token';
    await exchangeCode(recording, tokenUrl, { code: 'c&x=1', codeVerifier: 'v', clientId: 'app-1', redirectUri: 'https://volmo/launch/callback' });
    expect(forms[0]!.get('client_id')).toBe('app-1');
    expect(forms[0]!.get('code')).toBe('c&x=1'); // encoded: a code cannot add parameters
    expect(forms[0]!.has('client_assertion')).toBe(false);

    for (const alg of ['RS384', 'ES384'] as const) {
      const key = await generateServiceKey(alg);
      const auth = { kind: 'private_key_jwt' as const, key };
      forms.length = 0;
      await exchangeCode(recording, tokenUrl, { code: 'c1', codeVerifier: 'v', clientId: 'app-1', redirectUri: 'https://volmo/launch/callback', auth });
      await refreshAccessToken(recording, tokenUrl, { refreshToken: 'r1', clientId: 'app-1', auth });
      expect(forms.map((f) => f.get('grant_type'))).toEqual(['authorization_code', 'refresh_token']);
      const jtis = new Set<string>();
      for (const form of forms) {
        expect(form.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
        expect(form.has('client_id')).toBe(false);
        const jwt = form.get('client_assertion')!;
        const { payload, protectedHeader } = await jwtVerify(jwt, await importJWK(key.publicJwk, alg), { issuer: 'app-1', subject: 'app-1', audience: tokenUrl });
        expect(protectedHeader).toMatchObject({ alg, kid: key.kid, typ: 'JWT' });
        expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
        expect(payload.exp! * 1000).toBeGreaterThan(Date.now());
        jtis.add(payload.jti!);
        // Another key's public half does not verify it.
        await expect(jwtVerify(jwt, await importJWK((await generateServiceKey(alg)).publicJwk, alg))).rejects.toThrow();
      }
      expect(jtis.size).toBe(2);
    }
  });
});

describe('browser cookie', () => {
  it('is Lax on http loopback, None+Secure on https, HttpOnly, one name for the whole app', () => {
    const http = browserCookie('http://127.0.0.1:8080', 'id.sec', 300);
    expect(http).toBe('volmo_browser=id.sec; Path=/; Max-Age=300; HttpOnly; SameSite=Lax');
    const https = browserCookie('https://volmo.example', 'id.sec', 300);
    expect(https).toContain('SameSite=None');
    expect(https).toContain('Secure');
    expect(readCookie('a=1; volmo_browser=x; b=2', 'volmo_browser')).toBe('x');
    expect(readCookie('a=1', 'volmo_browser')).toBeUndefined();
  });

  it('rotates the secret: the new one opens, the old one only within a minute, a forged one never', async () => {
    let t = 1_000_000;
    const binding = new BrowserBinding(new MemoryKeyedStore<BrowserRecord>({ maxEntries: 10, now: () => t }), { publicUrl: 'http://127.0.0.1', ttlMs: 3_600_000, now: () => t });
    const cookieOf = (set: string) => set.split(';')[0]!;
    const first = (await binding.ensure(undefined))!;
    const c1 = cookieOf(first.setCookie!);
    expect(await binding.verify(c1)).toBe(first.browserId);
    expect((await binding.ensure(c1))!.browserId).toBe(first.browserId);
    const c2 = cookieOf((await binding.rotate(first.browserId))!);
    expect(c2).not.toBe(c1);
    expect(await binding.verify(c2)).toBe(first.browserId);
    expect(await binding.verify(c1)).toBe(first.browserId);
    t += 61_000;
    expect(await binding.verify(c1)).toBeUndefined();
    expect(await binding.verify(c2)).toBe(first.browserId);
    expect(await binding.verify(`volmo_browser=${first.browserId}.${'A'.repeat(43)}`)).toBeUndefined();
    expect(await binding.verify('volmo_browser=garbage')).toBeUndefined();
  });
});

const result = (patient: string, note: string, random: boolean) =>
  ({
    model: { name: 'VOLMO-2B', version: '1', manifestSha256: 'x', executionProvider: 'cpu', random },
    report: { note: { text: note }, diagnosticReport: { subject: { reference: patient }, issued: '2026-01-01T00:00:00Z' } },
  }) as unknown as AnalysisResult;

describe('app page', () => {
  it('escapes everything and shows the TEST MODEL banner, the draft text and the pending-review notice', () => {
    const html = appPage({
      needPatientBanner: true,
      patient: { name: '<script>alert(1)</script>', gender: 'female', birthDate: '1961-04-12', mrn: 'VOLMO-1' },
      drafts: [{ id: 'd1', noteText: 'Findings: <b>none</b> & more', random: true, model: 'VOLMO-2B 1' }],
    });
    // The one script is the layout's own (local dates; it runs by the response's CSP nonce); none from the data.
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toMatch(/<script>for\(const t of document\.querySelectorAll\('time\[datetime\]'\)\)/);
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('<pre>Findings: &lt;b&gt;none&lt;/b&gt; &amp; more</pre>');
    expect(html).toContain('TEST MODEL WITH RANDOM WEIGHTS');
    expect(html).toContain('born 1961-04-12');
    expect(html).toContain('Draft pending clinician review; signing is not available yet.');
    expect(escapeHtml(`"'`)).toBe('&quot;&#39;');
  });

  it('says plainly when there is no analysis, and shows no TEST MODEL banner then', () => {
    const html = appPage({ needPatientBanner: false, patient: { name: 'Rosa Delgado' }, drafts: [] });
    expect(html).toContain('No AI analysis is available for this patient yet');
    expect(html).not.toContain('TEST MODEL');
    expect(html).toContain('Draft for <strong>Rosa Delgado</strong>');
  });

  it('names the patient from the official name, else the first', () => {
    expect(patientView({ resourceType: 'Patient', name: [{ use: 'nickname', given: ['Ro'] }, { use: 'official', given: ['Rosa', 'M'], family: 'Delgado' }] }).name).toBe('Rosa M Delgado');
    expect(patientView({ resourceType: 'Patient', identifier: [{ type: { coding: [{ code: 'MR' }] }, value: 'M1' }] })).toEqual({ name: '(no name recorded)', mrn: 'M1' });
  });
});

describe('AnalysisCache.latestForPatient', () => {
  it('returns finished, unexpired analyses of that patient only, newest first', async () => {
    let now = 0;
    const cache = new AnalysisCache({ ttlMs: 1000, maxEntries: 10, now: () => now });
    const a = cache.getOrStart('a', 'ehr|Patient/p1', async () => result('Patient/p1', 'first', false));
    now = 10;
    const b = cache.getOrStart('b', 'ehr|Patient/p1', async () => result('Patient/p1', 'second', true));
    cache.getOrStart('c', 'ehr|Patient/p2', async () => result('Patient/p2', 'other', false));
    cache.getOrStart('running', 'ehr|Patient/p1', () => new Promise<AnalysisResult>(() => {}));
    await Promise.all([a.promise, b.promise]);
    expect(cache.latestForPatient('ehr|Patient/p1').map((e) => e.result.report.note.text)).toEqual(['second', 'first']);
    expect(cache.latestForPatient('ehr|Patient/p1', 1)).toHaveLength(1);
    expect(cache.latestForPatient('ehr|Patient/p3')).toEqual([]);
    cache.getOrStart('other-ehr', 'other-ehr|Patient/p1', async () => result('Patient/p1', 'other EHR, same id', false));
    expect(cache.latestForPatient('ehr|Patient/p1').map((e) => e.result.report.note.text)).not.toContain('other EHR, same id');
    now = 1005;
    expect(cache.latestForPatient('ehr|Patient/p1').map((e) => e.id)).toEqual([b.id]);
  });
});
