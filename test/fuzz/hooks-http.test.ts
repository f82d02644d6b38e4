/**
 * Seeded fuzzing through the real express app: signed patient-view calls whose bodies, prefetch and FHIR
 * server answers (a loopback server on the allowlist) are hostile. Property: no 5xx, ever. The engine is a
 * stand-in that is never reached: no fuzzed record carries a decodable image.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandInHookApp, VIEW, VIEW_URL as viewUrl, type StandInHookApp } from '../helpers/stand-in-hook-app.js';
import { json } from '../net/helpers/scripted-server.js';
import { fuzzRuns, hostileJson, mutated } from './arbitraries.js';
import { prefetch, prefetchValue } from './records.js';

const FHIR_PATHS = ['Patient/p1', 'Condition', 'Observation', 'MedicationRequest', 'MedicationStatement', 'DocumentReference', 'ImagingStudy', 'Media'];
const PATIENT = { resourceType: 'Patient', id: 'p1', gender: 'female', birthDate: '1961-06-15' };

describe('fuzz: hook calls through the express app', () => {
  let h: StandInHookApp;
  /** What the loopback FHIR server answers to the current call, per path. */
  let answers: unknown[] = [];

  beforeAll(async () => {
    h = await startStandInHookApp();
    FHIR_PATHS.forEach((p, i) => h.srv.route(`/fhir/${p}`, (_q, r) => json(r, 200, answers[i] ?? { resourceType: 'Bundle', type: 'searchset' })));
  });
  afterAll(() => h.close());

  it('never answers 5xx (200 signed calls)', async () => {
    const fhirAuthorization = () => ({ fhirServer: `${h.srv.origin}/fhir`, fhirAuthorization: { access_token: 'fuzz-token', token_type: 'Bearer', expires_in: 300, scope: 'patient/*.read', subject: 'volmo', patient: 'p1' } });
    const call = (pf: unknown, fromServer: boolean) => ({ hook: 'patient-view', hookInstance: randomUUID(), context: { userId: 'Practitioner/1', patientId: 'p1' }, prefetch: pf, ...(fromServer ? fhirAuthorization() : {}) });
    const body = fc.oneof(
      // mostly with a readable Patient, so that calls get past the patient check into the rest of the evidence
      { weight: 4, arbitrary: fc.tuple(prefetch, fc.boolean(), fc.nat(3)).map(([pf, s, keep]) => call(keep > 0 ? { ...pf, patient: PATIENT } : pf, s)) },
      { weight: 1, arbitrary: mutated([call({ patient: PATIENT }, false)], 3) },
      { weight: 1, arbitrary: hostileJson },
    );
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(body, fc.array(prefetchValue, { minLength: FHIR_PATHS.length, maxLength: FHIR_PATHS.length }), async (b, served) => {
        answers = served;
        const res = await request(h.app).post(`/cds-services/${VIEW}`).set('authorization', `Bearer ${await h.ehr.signJwt(viewUrl)}`).set('content-type', 'application/json').send(JSON.stringify(b) ?? 'null');
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBeLessThan(500);
        if (res.status === 200) expect(Array.isArray(res.body.cards)).toBe(true);
      }),
      fuzzRuns(200),
    );
    expect(statuses.get(200) ?? 0).toBeGreaterThan(80); // most calls got past the parser into evidence gathering
  });
});
