import { describe, expect, it } from 'vitest';
import { fhirAuthorizationTokenSource, parseFhirAuthorization, smartSessionTokenSource } from '../../src/fhir/token-source.js';

describe('token sources', () => {
  it('validates fhirAuthorization defensively, naming fields not values', () => {
    const ok = parseFhirAuthorization({ access_token: 'tok-abc', token_type: 'Bearer', expires_in: 300, scope: 'patient/*.read', subject: 'volmo' });
    expect(ok.access_token).toBe('tok-abc');
    expect(parseFhirAuthorization({ access_token: 'tok-abc' }).expires_in).toBeUndefined(); // HSPC tokens omit it
    for (const bad of [null, 'x', {}, { access_token: '' }, { access_token: 'tok-abc', token_type: 'MAC' }, { access_token: 'tok-abc', expires_in: -1 }, { access_token: 'tok-abc', expires_in: '300' }, { access_token: 'tok-abc', scope: 5 }]) {
      let msg = '';
      try {
        parseFhirAuthorization(bad);
      } catch (err) {
        expect((err as { code: string }).code).toBe('bad_request');
        msg = (err as Error).message;
      }
      expect(msg).toMatch(/fhirAuthorization/);
      expect(msg).not.toContain('tok-abc');
    }
  });

  it('expires an EHR token after expires_in (default 300 s when missing)', async () => {
    let now = 0;
    const src = fhirAuthorizationTokenSource({ access_token: 't1', expires_in: 10 }, () => now);
    expect(await src.getToken()).toBe('t1');
    now = 10_000;
    await expect(src.getToken()).rejects.toMatchObject({ code: 'upstream_refused' });
    const noExp = fhirAuthorizationTokenSource({ access_token: 't2' }, () => now);
    now += 299_000;
    expect(await noExp.getToken()).toBe('t2');
    now += 2_000;
    await expect(noExp.getToken()).rejects.toThrow(/expired/);
    expect(src.invalidate).toBeUndefined();
  });

  it('reads the SMART session token on every call', async () => {
    let tok = { accessToken: 'a', expiresAt: 100 };
    let now = 0;
    const src = smartSessionTokenSource(() => tok, () => now);
    expect(await src.getToken()).toBe('a');
    tok = { accessToken: 'b', expiresAt: 200 };
    expect(await src.getToken()).toBe('b');
    now = 500;
    await expect(src.getToken()).rejects.toMatchObject({ code: 'unauthorized' });
  });
});
