import { describe, expect, it } from 'vitest';
import { AnalysisCache } from '../../src/analysis/analysis-cache.js';
import { hookConcernsEyes, isEyeOrder, ordersInScope } from '../../src/cds/eye-orders.js';
import { createHookHandler } from '../../src/cds/hook-handler.js';
import type { CdsRequest } from '../../src/cds/request-schema.js';
import { resolveFindingsConfig } from '../../src/findings/config.js';
import { silentLogger } from '../../src/log.js';
import type { VlmEngine } from '../../src/model/runtime/types.js';
import type { GuardedFetch } from '../../src/net/guarded-fetch.js';
import { draftOrders, eyeExamOrder, nonEyeOrder } from '../../src/sandbox/orders.js';
import { CDS_SERVICES } from '../../cds-hooks/index.js';

const sr = (code: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ resourceType: 'ServiceRequest', id: 'x', status: 'draft', intent: 'order', code, ...extra });
const coded = (system: string, code: string) => sr({ coding: [{ system, code }] });

describe('eye orders', () => {
  it.each([
    ['CPT 92250 fundus photography', coded('http://www.ama-assn.org/go/cpt', '92250')],
    ['CPT 92229 autonomous AI retinal imaging', coded('http://www.ama-assn.org/go/cpt', '92229')],
    ['CPT 92134 OCT retina', coded('http://www.ama-assn.org/go/cpt', '92134')],
    ['CPT 67028 intravitreal injection', coded('http://www.ama-assn.org/go/cpt', '67028')],
    ['SNOMED 722161008 diabetic retinal eye exam', coded('http://snomed.info/sct', '722161008')],
    ['SNOMED 700070005 OCT of retina', coded('http://snomed.info/sct', '700070005')],
    ['LOINC 105914-6 AI DR screening', coded('http://loinc.org', '105914-6')],
    ['a local code with text "Referral to Ophthalmology"', sr({ coding: [{ system: 'urn:oid:1.2.840.114350', code: '12345' }], text: 'Referral to Ophthalmology' })],
    ['a display "Diabetic eye exam"', sr({ coding: [{ system: 'urn:local', code: 'DEE', display: 'Diabetic Eye Exam' }] })],
    ['an optometry referral by performerType', sr({ text: 'Referral' }, { performerType: { text: 'Optometrist / optometry' } })],
    ['an intravitreal medication by route', { resourceType: 'MedicationRequest', medicationCodeableConcept: { text: 'aflibercept 2 mg' }, dosageInstruction: [{ route: { coding: [{ system: 'http://snomed.info/sct', code: '418401004' }] } }] }],
  ])('%s is an eye order', (_n, r) => expect(isEyeOrder(r)).toBe(true));

  it.each([
    ['a lipid panel', nonEyeOrder('p')],
    ['a chest X-ray', sr({ coding: [{ system: 'http://loinc.org', code: '36643-5' }], text: 'XR Chest 2 views' })],
    ['metformin', { resourceType: 'MedicationRequest', medicationCodeableConcept: { text: 'metformin 500 mg' } }],
    ['CPT 92250 under another system', coded('http://snomed.info/sct', '92250')],
    ['a word that merely contains "oct"', sr({ text: 'Doctor visit, octreotide' })],
    ['hostile shapes', { code: { coding: [null, 5, { system: 1, code: {} }], text: 7 }, dosageInstruction: 'x', category: [null] }],
    ['null', null],
  ])('%s is not', (_n, r) => expect(isEyeOrder(r)).toBe(false));

  it('order-select looks at the selected orders only; order-sign at every draft order', () => {
    const ctx = { draftOrders: draftOrders(nonEyeOrder('p', 'a'), eyeExamOrder('p', 'b')), selections: ['ServiceRequest/a'] };
    expect(ordersInScope(ctx, 'order-select').map((r) => (r as { id: string }).id)).toEqual(['a']);
    expect(hookConcernsEyes('order-select', ctx)).toBe(false);
    expect(hookConcernsEyes('order-select', { ...ctx, selections: ['ServiceRequest/b'] })).toBe(true);
    expect(hookConcernsEyes('order-sign', ctx)).toBe(true);
    expect(hookConcernsEyes('order-sign', { draftOrders: draftOrders(nonEyeOrder('p')) })).toBe(false);
    expect(hookConcernsEyes('order-sign', { draftOrders: { resourceType: 'Bundle', entry: 'nope' } })).toBe(false);
    expect(hookConcernsEyes('patient-view', {})).toBe(true);
  });
});

describe('hook handler for a non-eye order', () => {
  it('answers no cards at once, reading nothing (no FHIR request, no model)', async () => {
    const calls: string[] = [];
    const fetch = Object.assign(
      async (url: string | URL) => {
        calls.push(String(url));
        throw new Error('no network in this test');
      },
      { check: async () => {}, allows: () => true, close: () => {} },
    ) as unknown as GuardedFetch;
    let engineAsked = 0;
    const engine = { info: { name: 't', version: '1', random: true, manifestSha256: 'x', executionProvider: 'cpu', dtype: 'fp32' } } as unknown as VlmEngine;
    const handler = createHookHandler({
      log: silentLogger(),
      publicUrl: 'https://cds.example.org',
      fetch,
      isFhirServerAllowed: () => true,
      engine: () => (engineAsked++, engine),
      findings: resolveFindingsConfig(),
      analyses: new AnalysisCache({ ttlMs: 1000, maxEntries: 10 }),
      waitMs: 0,
    });
    const request = (orders: Record<string, unknown>): CdsRequest => ({
      hook: 'order-sign',
      hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
      fhirServer: 'https://ehr.example.org/fhir',
      fhirAuthorization: { access_token: 'secret-token', token_type: 'Bearer', expires_in: 300, scope: 'user/*.rs', subject: 'volmo' },
      context: { userId: 'Practitioner/1', patientId: 'p1', draftOrders: orders },
    });
    const sign = CDS_SERVICES.find((s) => s.hook === 'order-sign')!;
    const res = await handler(request(draftOrders(nonEyeOrder('p1'))), sign, { signal: new AbortController().signal, iss: 'https://ehr.example.org' });
    expect(res).toEqual({ cards: [] });
    expect(calls).toEqual([]);
    expect(engineAsked).toBe(0);
    // The same call with an eye order does go on to read the evidence.
    await handler(request(draftOrders(eyeExamOrder('p1'))), sign, { signal: new AbortController().signal, iss: 'https://ehr.example.org' }).catch(() => undefined);
    expect(engineAsked).toBe(1);
    expect(calls.length).toBeGreaterThan(0);
  });
});
