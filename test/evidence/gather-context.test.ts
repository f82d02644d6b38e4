import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVIDENCE_PREFETCH } from '../../cds-hooks/prefetch.js';
import { createLogger } from '../../src/log.js';
import { createGuardedFetch, type GuardedFetch } from '../../src/net/guarded-fetch.js';
import { HttpFhirClient } from '../../src/fhir/http-client.js';
import { MemoryFhirClient } from '../fhir/memory-client.js';
import { fhirAuthorizationTokenSource } from '../../src/fhir/token-source.js';
import { CONTEXT_QUERIES, gatherClinicalContext, type ContextKey } from '../../src/evidence/gather-context.js';
import { assembleEvidenceBundle } from '../../src/evidence/assemble.js';
import { json, startScriptedServer, type ScriptedServer } from '../net/helpers/scripted-server.js';
import { buildPrefetch } from './helpers/build-prefetch.js';
import { NOW, PATIENT_P1 } from './helpers/patient-records.js';

const ALL = Object.keys(CONTEXT_QUERIES) as ContextKey[];

describe('gatherClinicalContext', () => {
  it('publishes a prefetch template for every query it would otherwise run itself', () => {
    const published = EVIDENCE_PREFETCH as Record<string, string>;
    for (const key of ALL) expect(published[key], key).toBe(CONTEXT_QUERIES[key]);
  });

  it('extracts the full clinical context without prefetch', async () => {
    const fhir = new MemoryFhirClient(PATIENT_P1);
    const r = await gatherClinicalContext(fhir, { patientId: 'p1', now: NOW });
    const p = r.patient;
    expect([p.ageYears, p.sex]).toEqual([64, 'female']);
    expect(p.conditions.map((c) => c.category)).toEqual(['diabetes', 'hypertension', 'glaucoma']);
    expect(p.hba1c?.percent).toBe(8.1);
    expect(p.bloodPressure).toMatchObject({ systolicMmHg: 148, diastolicMmHg: 92 });
    expect([p.iop.right?.mmHg, p.iop.left?.mmHg]).toEqual([16, 24]); // Patient/p2's 40 mmHg never appears
    expect([p.visualAcuity.right?.snellen, p.visualAcuity.left?.snellen]).toEqual(['20/25', '20/40']);
    expect(p.medications.map((m) => m.coding.display)).toEqual(['Latanoprost 0.005% ophthalmic solution', 'Hydroxychloroquine 200 mg tablet', 'Brimonidine tartrate 0.2% solution']);
    expect(p.notes.map((n) => [n.ref, n.contentType])).toEqual([
      ['DocumentReference/n1', 'text/plain'],
      ['DocumentReference/n2', 'text/html'],
      ['DocumentReference/n3', 'text/rtf'],
    ]);
    expect(p.notes[1].text).toBe('HbA1c rising & BP > target.');
    expect(p.notes[2].text).toBe('Floaters OD, no flashes.\nFundus: dot haemorrhages.');
    expect(r.problems).toEqual([]);
    expect(r.sources).toEqual({ prefetchUsed: [], fetched: ALL });
  });

  it('complete, partial and no prefetch give the same context, fetching only what is missing', async () => {
    const fhir0 = new MemoryFhirClient(PATIENT_P1);
    const none = await gatherClinicalContext(fhir0, { patientId: 'p1', now: NOW });

    const fhir1 = new MemoryFhirClient(PATIENT_P1);
    const complete = await gatherClinicalContext(fhir1, { patientId: 'p1', now: NOW, prefetch: await buildPrefetch(new MemoryFhirClient(PATIENT_P1), 'p1', ALL) });
    expect(complete.patient).toEqual(none.patient);
    expect(fhir1.calls).toEqual(['read Binary']); // only the note attachment held by URL
    expect(complete.sources).toEqual({ prefetchUsed: ALL, fetched: [] });

    const fhir2 = new MemoryFhirClient(PATIENT_P1);
    const partial = await gatherClinicalContext(fhir2, { patientId: 'p1', now: NOW, prefetch: await buildPrefetch(new MemoryFhirClient(PATIENT_P1), 'p1', ['patient', 'observations']) });
    expect(partial.patient).toEqual(none.patient);
    expect(fhir2.calls.sort()).toEqual(['read Binary', 'search Condition', 'search DocumentReference', 'search MedicationRequest', 'search MedicationStatement']);
    expect(partial.sources).toEqual({ prefetchUsed: ['patient', 'observations'], fetched: ALL.filter((k) => k !== 'patient' && k !== 'observations') });
  });

  it('null prefetch values mean no data; missing data is reported, not invented', async () => {
    const fhir = new MemoryFhirClient(PATIENT_P1);
    const r = await gatherClinicalContext(fhir, { patientId: 'p1', now: NOW, prefetch: { observations: null, notes: null } });
    expect(r.patient.hba1c).toBeUndefined();
    expect(r.patient.notes).toEqual([]);
    expect(fhir.calls).not.toContain('search Observation');
    expect(r.problems.map((p) => p.source).sort()).toEqual(['observations:blood-pressure', 'observations:hba1c', 'observations:iop', 'observations:visual-acuity']);
    expect(r.problems.every((p) => p.kind === 'missing_data' && p.severity === 'info')).toBe(true);
  });

  it('works from prefetch alone without FHIR access, reporting what it could not get', async () => {
    const prefetch = await buildPrefetch(new MemoryFhirClient(PATIENT_P1), 'p1', ['patient', 'conditions']);
    const r = await gatherClinicalContext(undefined, { patientId: 'p1', now: NOW, prefetch });
    expect(r.patient.conditions.length).toBe(3);
    expect(r.problems.filter((p) => p.kind === 'missing_data' && p.severity === 'warning').map((p) => p.source)).toEqual(['observations', 'medications', 'medicationStatements', 'notes']);
    const nothing = await gatherClinicalContext(undefined, { patientId: 'p1', now: NOW });
    expect(nothing.problems.find((p) => p.source === 'patient')?.severity).toBe('error');
  });

  it('renders the VOLMO case text from the context', async () => {
    const ctx = await gatherClinicalContext(new MemoryFhirClient(PATIENT_P1), { patientId: 'p1', now: NOW });
    const bundle = assembleEvidenceBundle({ context: ctx });
    const t = bundle.caseText;
    const heads = ['[PATIENT CLINICAL PROFILE]', '[MEDICAL HISTORY]', '[SYMPTOMS]', '[EXAMINATION FINDINGS]', '[DIAGNOSTIC IMAGING]'];
    expect(heads.map((h) => t.indexOf(h))).toEqual([...heads.map((h) => t.indexOf(h))].sort((a, b) => a - b));
    for (const h of heads) expect(t.split(h).length).toBe(2); // each header exactly once: note text cannot inject one
    expect(t).toContain('64-year-old female');
    expect(t).toContain('- Type 2 diabetes mellitus (since 2012-03-01)');
    expect(t).toContain('- Primary open-angle glaucoma, left eye\n'); // laterality already in the name: not repeated
    expect(t).toContain('- HbA1c 8.1% (65 mmol/mol) (2026-03-02)');
    expect(t).toContain('- Blood pressure 148/92 mmHg (2026-04-10)');
    expect(t).toContain('Latanoprost 0.005% ophthalmic solution (1 drop in the left eye at bedtime)');
    expect(t).toContain('Blurred vision in the left eye for 3 weeks.');
    expect(t).toContain('right eye 20/25 (logMAR 0.10), best corrected (2026-04-10); left eye 20/40 (logMAR 0.30), best corrected');
    expect(t).toContain('Intraocular pressure: right eye 16 mmHg (2026-04-10); left eye 24 mmHg (2026-04-10)');
    expect(t).toContain('No retinal images available.');
    expect(t).not.toContain('Testperson');
    const noAge = assembleEvidenceBundle({ context: { ...ctx, patient: { ...ctx.patient, ageYears: undefined } } });
    expect(noAge.caseText).toContain('[PATIENT CLINICAL PROFILE]\nFemale, age not documented.');
    const withImages = assembleEvidenceBundle({
      context: ctx,
      images: {
        right: [{ contentHash: 'a'.repeat(64), eye: 'right', modality: 'OP', provenance: { via: 'wado-rendered' }, gradability: { status: 'gradable', reasons: [] }, acquired: '2026-04-10T10:00:00Z' }],
        left: [{ contentHash: 'b'.repeat(64), eye: 'left', modality: 'OP', provenance: { via: 'fhir-attachment' }, gradability: { status: 'ungradable', reasons: ['too_dark'] } }],
        unknown: [],
      },
      imageProblems: [{ kind: 'image_ungradable', severity: 'warning', source: 'images', message: 'one image ungradable' }],
    });
    expect(withImages.caseText).toContain('- Right eye: colour fundus photograph 2026-04-10 (gradable)\n- Left eye: colour fundus photograph (ungradable: too_dark)');
    expect(withImages.problems.map((p) => p.kind)).toEqual(['image_ungradable']);
  });
});

describe('gatherClinicalContext over HTTP with a misbehaving FHIR server', () => {
  const TOKEN = 'ehr-access-token-7f3a9c1e5b';
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: new Writable({ write(c, _e, cb) { logLines.push(String(c)); cb(); } }) });
  let srv: ScriptedServer;
  let gf: GuardedFetch;
  const byType = (t: string) => PATIENT_P1.filter((r) => r.resourceType === t && (r as { subject?: { reference?: string } }).subject?.reference !== 'Patient/p2');
  const bundleOf = (t: string) => ({ resourceType: 'Bundle', type: 'searchset', entry: byType(t).map((resource) => ({ resource })) });

  beforeAll(async () => {
    srv = await startScriptedServer();
    // 1 s per request: a hanging server is cut off, while answers on a loaded 2-core machine (seen > 300 ms) still arrive.
    gf = createGuardedFetch({ allow: [`${srv.origin}/fhir`], timeoutMs: 1000, logger, retry: { baseDelayMs: 5, maxDelayMs: 10, maxRetries: 1 } });
    srv.route('/fhir/Patient/p1', (_q, r) => json(r, 200, byType('Patient')[0]));
    srv.route('/fhir/Condition', (_q, r) => r.writeHead(200, { 'content-type': 'text/html' }).end('<html>Session expired, log in</html>'));
    srv.route('/fhir/Observation', (_q, r) => json(r, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception', diagnostics: `token ${TOKEN} rejected for Patient/p1` }] }));
    srv.route('/fhir/MedicationRequest', () => {}); // hangs
    srv.route('/fhir/MedicationStatement', (_q, r) => json(r, 200, bundleOf('MedicationStatement')));
    srv.route('/fhir/DocumentReference', (_q, r) => json(r, 200, bundleOf('DocumentReference')));
    srv.route('/fhir/Binary/b2', (_q, r) => json(r, 429, {}, { 'retry-after': '3600' }));
  });
  afterAll(async () => { gf.close(); await srv.close(); });

  it('ends every failure in a typed problem, within the timeouts, without leaking the token', async () => {
    const fhir = new HttpFhirClient({ baseUrl: `${srv.origin}/fhir`, fetch: gf, tokens: fhirAuthorizationTokenSource({ access_token: TOKEN, expires_in: 60 }), logger });
    const t0 = Date.now();
    const r = await gatherClinicalContext(fhir, { patientId: 'p1', now: NOW });
    expect(Date.now() - t0).toBeLessThan(5000); // bounded by the per-request timeout, not by the hanging server
    expect(r.patient.ageYears).toBe(64);
    expect(r.patient.notes.map((n) => n.ref)).toEqual(['DocumentReference/n1', 'DocumentReference/n3']);
    const byKey = Object.fromEntries(r.problems.filter((p) => p.kind === 'fhir_error').map((p) => [p.source, p.code]));
    expect(byKey).toEqual({ conditions: 'upstream_error', observations: 'upstream_error', medications: 'upstream_timeout' });
    expect(r.problems.some((p) => p.kind === 'note_unreadable')).toBe(true);
    const text = JSON.stringify(r.problems) + logLines.join('\n');
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('Patient/p1');
    expect(assembleEvidenceBundle({ context: r }).caseText).toContain('[EXAMINATION FINDINGS]');
  });

  it('the caller can abort the whole gathering', async () => {
    const fhir = new HttpFhirClient({ baseUrl: `${srv.origin}/fhir`, fetch: gf, tokens: fhirAuthorizationTokenSource({ access_token: TOKEN }) });
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 30);
    await expect(gatherClinicalContext(fhir, { patientId: 'p1', signal: ctl.signal })).rejects.toBeDefined();
  });
});
