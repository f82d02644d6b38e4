import { describe, expect, it } from 'vitest';
import { createGuardedFetch } from '../../src/net/guarded-fetch.js';
import { fhirClientForHook } from '../../src/fhir/hook-client.js';
import { HttpFhirClient } from '../../src/fhir/http-client.js';

const gf = createGuardedFetch({ allow: ['https://ehr.example.org/api/FHIR/R4'] });

describe('fhirClientForHook', () => {
  it('builds a client only for allowlisted servers with a token', () => {
    const c = fhirClientForHook({ fhirServer: 'https://ehr.example.org/api/FHIR/R4', fhirAuthorization: { access_token: 't', token_type: 'Bearer', expires_in: 300, scope: 's', subject: 'x' } }, { fetch: gf });
    expect(c).toBeInstanceOf(HttpFhirClient);
    expect(c?.baseUrl).toBe('https://ehr.example.org/api/FHIR/R4');
  });

  it('refuses an unlisted fhirServer (attacker-controlled input)', () => {
    for (const fhirServer of ['http://169.254.169.254/latest', 'https://ehr.example.org.evil.com/api/FHIR/R4', 'https://ehr.example.org/admin', 'https://user:pw@ehr.example.org/api/FHIR/R4', 'file:///etc']) {
      expect(() => fhirClientForHook({ fhirServer, fhirAuthorization: { access_token: 't' } }, { fetch: gf })).toThrow(expect.objectContaining({ code: 'upstream_refused' }));
    }
  });

  it('returns undefined without fhirServer or token; validates the token object', () => {
    expect(fhirClientForHook({}, { fetch: gf })).toBeUndefined();
    expect(fhirClientForHook({ fhirServer: 'https://ehr.example.org/api/FHIR/R4' }, { fetch: gf })).toBeUndefined();
    expect(fhirClientForHook({ fhirServer: 'https://ehr.example.org/api/FHIR/R4' }, { fetch: gf, allowAnonymous: true })).toBeInstanceOf(HttpFhirClient);
    expect(() => fhirClientForHook({ fhirServer: 'https://ehr.example.org/api/FHIR/R4', fhirAuthorization: { token_type: 'Bearer' } }, { fetch: gf })).toThrow(expect.objectContaining({ code: 'bad_request' }));
  });

  it('allows() never throws on junk', () => {
    expect(gf.allows('not a url')).toBe(false);
    expect(gf.allows('https://ehr.example.org/api/FHIR/R4/Patient')).toBe(true);
  });
});
