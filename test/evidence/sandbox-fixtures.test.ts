/**
 * The clinical-context half of the evidence pipeline against the real sandbox FHIR server loaded with
 * the fixture patients, over the guarded fetch: expected values per patient, and prefetch-complete,
 * prefetch-partial and no-prefetch calls give the same context.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { createGuardedFetch, type GuardedFetch } from '../../src/net/guarded-fetch.js';
import { HttpFhirClient } from '../../src/fhir/http-client.js';
import { anonymousTokenSource } from '../../src/fhir/token-source.js';
import { CONTEXT_QUERIES, gatherClinicalContext, type ContextKey } from '../../src/evidence/gather-context.js';
import { openFhirServer, type FhirSandbox } from '../../src/sandbox/fhir-server.js';
import { FIXTURE_MRN_SYSTEM, listFixturePatients, loadFixtureBundles } from '../../src/sandbox/fixtures.js';
import { buildPrefetch } from './helpers/build-prefetch.js';

let sandbox: FhirSandbox;
let gf: GuardedFetch;
let fhir: HttpFhirClient;
const ids = new Map<string, string>();
const NOW = new Date('2025-06-01T00:00:00Z');

beforeAll(async () => {
  sandbox = (await openFhirServer({ log: silentLogger(), requireAuth: false })).sandbox;
  for (const b of loadFixtureBundles()) await sandbox.loadBundle(b);
  gf = createGuardedFetch({ allow: [sandbox.baseUrl], timeoutMs: 5000 });
  fhir = new HttpFhirClient({ baseUrl: sandbox.baseUrl, fetch: gf, tokens: anonymousTokenSource });
  for (const p of listFixturePatients()) {
    const found = await fhir.search('Patient', { identifier: `${FIXTURE_MRN_SYSTEM}|${p.mrn}` });
    ids.set(p.key, found.resources[0].id!);
  }
});
afterAll(async () => {
  gf.close();
  await sandbox.close();
});

describe('clinical context of the sandbox fixture patients', () => {
  it('diabetic patient', async () => {
    const { patient: p, problems } = await gatherClinicalContext(fhir, { patientId: ids.get('diabetic')!, now: NOW });
    expect([p.ageYears, p.sex]).toEqual([64, 'female']);
    expect(p.conditions.map((c) => c.category)).toEqual(['diabetes', 'hypertension']);
    expect(p.hba1c?.percent).toBe(8.4);
    expect(p.bloodPressure).toMatchObject({ systolicMmHg: 148, diastolicMmHg: 92 });
    expect([p.visualAcuity.right?.snellen, p.visualAcuity.left?.snellen, p.iop.right?.mmHg, p.iop.left?.mmHg]).toEqual(['20/40', '20/30', 16, 17]);
    expect(p.medications.map((m) => m.eye)).toEqual(['both']);
    expect(p.notes).toHaveLength(1);
    expect(problems).toEqual([]);
  });

  it('glaucoma patient: both eye drops from the medication list', async () => {
    const { patient: p } = await gatherClinicalContext(fhir, { patientId: ids.get('glaucoma')!, now: NOW });
    expect(p.conditions.map((c) => c.category)).toEqual(['glaucoma']);
    expect(p.medications.map((m) => m.coding.display.split(' ')[0])).toEqual(expect.arrayContaining(['Timolol', 'Latanoprost']));
  });

  it('every fixture patient yields a context; prefetch-complete, partial and none agree', async () => {
    const keys = Object.keys(CONTEXT_QUERIES) as ContextKey[];
    for (const [key, id] of ids) {
      const none = await gatherClinicalContext(fhir, { patientId: id, now: NOW });
      const complete = await gatherClinicalContext(fhir, { patientId: id, now: NOW, prefetch: await buildPrefetch(fhir, id, keys) });
      const partial = await gatherClinicalContext(fhir, { patientId: id, now: NOW, prefetch: await buildPrefetch(fhir, id, ['patient', 'conditions']) });
      expect(complete.patient, key).toEqual(none.patient);
      expect(partial.patient, key).toEqual(none.patient);
      expect(none.patient.ageYears, key).toBeGreaterThan(18);
      expect(complete.sources.fetched, key).toEqual([]);
      expect(none.problems.filter((p) => p.severity !== 'info'), key).toEqual([]);
    }
  });
});
