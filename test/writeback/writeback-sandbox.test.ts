/**
 * Each write-back profile against the real sandbox FHIR server, behaving like the EHR the profile is for
 * (src/sandbox/fhir/ehr-behaviour.ts): what is written, that a repeat writes nothing new, that a refusal
 * carries the server's reason and marks nothing done, and the audit rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../../src/analysis/analyse.js';
import type { ExamContext, ModelIdentity } from '../../src/findings/types.js';
import { HttpFhirClient } from '../../src/fhir/http-client.js';
import { anonymousTokenSource } from '../../src/fhir/token-source.js';
import { silentLogger } from '../../src/log.js';
import { createGuardedFetch, type GuardedFetch } from '../../src/net/guarded-fetch.js';
import { startFhirServer, type FhirSandbox } from '../../src/sandbox/fhir-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { idempotencyKey } from '../../src/writeback/identifiers.js';
import { draftTransaction, ensureDraft } from '../../src/writeback/profile-impl.js';
import type { WritebackProfileName } from '../../src/writeback/profiles.js';
import { WritebackService } from '../../src/writeback/service.js';
import { MODEL, RANDOM_MODEL, diabeticAnswers } from '../findings/exam-fixtures.js';
import { buildFor } from '../reports/report-fixtures.js';
import { diabeticOnServer } from './diabetic-on-server.js';

let fhir: FhirSandbox;
let gf: GuardedFetch;
let client: HttpFhirClient;
let ctx: ExamContext;
const CLINICIAN = 'Practitioner/dr-eye-1';
let clock = Date.UTC(2026, 10, 30, 9);
const now = () => clock;

async function get(path: string): Promise<any> {
  return (await fetch(`${fhir.baseUrl}${path}`, { headers: { accept: 'application/fhir+json' } })).json();
}
const count = async (path: string) => ((await get(path)).entry ?? []).length;

function analysis(id: string, opts: { model?: ModelIdentity; encounter?: boolean } = {}): { id: string; result: AnalysisResult } {
  const context = opts.encounter === false ? { ...ctx, encounter: undefined } : ctx;
  const model = opts.model ?? MODEL;
  const report = buildFor(context, diabeticAnswers, { model });
  return { id, result: { report, model, context } as unknown as AnalysisResult };
}

function service(profile: WritebackProfileName, store = new MemoryStore({ retention: { analysisMs: 86_400_000 }, log: silentLogger(), now })) {
  return { store, svc: new WritebackService({ store, settings: { profile: 'off', byServer: { [fhir.baseUrl]: profile } }, log: silentLogger(), now }) };
}

beforeAll(async () => {
  fhir = await startFhirServer({ authIssuer: 'http://127.0.0.1:9/issuer', log: silentLogger(), requireAuth: false });
  gf = createGuardedFetch({ allow: [fhir.baseUrl], timeoutMs: 5000, retry: { maxRetries: 0 } });
  client = new HttpFhirClient({ baseUrl: fhir.baseUrl, fetch: gf, tokens: anonymousTokenSource });
  ctx = await diabeticOnServer(fhir, get);
});
afterAll(async () => {
  gf?.close();
  await fhir?.close();
});

describe('fhir-standard against a standard FHIR server', () => {
  it('the draft, written twice, is created once (Device once per model build)', async () => {
    fhir.ehrProfile = 'standard';
    const a = analysis('an-tx');
    const first = await ensureDraft(client, a.result, a.id);
    const again = await ensureDraft(client, a.result, a.id);
    expect(again.report.id).toBe(first.report.id);
    expect(first.report.status).toBe('preliminary');
    expect(await count('/DiagnosticReport?identifier=urn:volmo-cds:writeback|an-tx/DiagnosticReport')).toBe(1);
    expect(await count('/Observation?identifier=urn:volmo-cds:writeback|an-tx/Observation/0')).toBe(1);
    expect(await count('/Provenance?_tag=urn:volmo-cds:writeback|an-tx/Provenance/draft')).toBe(1);
    await ensureDraft(client, analysis('an-tx-2').result, 'an-tx-2');
    expect(await count(`/Device?identifier=urn:volmo-cds:model-manifest-sha256|${MODEL.manifestSha256}`)).toBe(1);
  });

  it('why the draft transaction has no conditional entries: this FHIR router refuses them in a transaction over 8 entries', async () => {
    fhir.ehrProfile = 'standard';
    const a = analysis('an-medplum-limit');
    const bundle = draftTransaction(a.result, a.id, 'Device/x');
    expect(bundle.entry!.length).toBeGreaterThan(8);
    for (const e of bundle.entry!) e.request!.ifNoneExist = `_id=none-${Math.random().toString(36).slice(2)}`;
    await expect(client.transaction(bundle)).rejects.toMatchObject({ upstreamStatus: 400, outcomeText: expect.stringMatching(/strict isolation but has too many entries/) });
  });

  it('approve: a final report with the edited conclusion, the clinician as performer, a verifying Provenance; approving again writes nothing', async () => {
    fhir.ehrProfile = 'standard';
    const { svc, store } = service('fhir-standard');
    const a = analysis('an-approve');
    const out = await svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'Moderate NPDR right eye; refer within 3 months.' });
    expect(out).toMatchObject({ kind: 'written', profile: 'fhir-standard' });
    const drs = (await get('/DiagnosticReport?identifier=urn:volmo-cds:writeback|an-approve/DiagnosticReport')).entry;
    expect(drs).toHaveLength(1);
    const dr = drs[0].resource;
    expect(dr.status).toBe('final');
    expect(dr.conclusion).toBe('Moderate NPDR right eye; refer within 3 months.');
    expect(dr.performer).toEqual([{ reference: CLINICIAN }]);
    expect(dr.resultsInterpreter).toEqual([{ reference: CLINICIAN }]);
    expect(Buffer.from(dr.presentedForm[0].data, 'base64').toString('utf8')).toContain('AI-generated draft this conclusion was based on');
    const provs = (await get(`/Provenance?target=DiagnosticReport/${dr.id}`)).entry.map((e: any) => e.resource);
    const verifying = provs.find((p: any) => p.agent.some((g: any) => g.type.coding[0].code === 'verifier'));
    expect(verifying.agent.map((g: any) => [g.type.coding[0].code, g.who.reference.split('/')[0]])).toEqual([['author', 'Device'], ['verifier', 'Practitioner']]);
    expect(verifying.agent[1].who.reference).toBe(CLINICIAN);

    const again = await svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'changed my mind' });
    expect(again.kind).toBe('already');
    expect((await get(`/DiagnosticReport/${dr.id}`)).conclusion).toBe('Moderate NPDR right eye; refer within 3 months.');
    // The store's record lost (another replica, a restored backup): the server's identifiers still prevent duplicates.
    const fresh = service('fhir-standard');
    expect((await fresh.svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'x' })).kind).toBe('written');
    expect(await count('/DiagnosticReport?identifier=urn:volmo-cds:writeback|an-approve/DiagnosticReport')).toBe(1);
    expect(await count('/Provenance?_tag=urn:volmo-cds:writeback|an-approve/Provenance/approve')).toBe(1);

    const audit = await store.audit.list({ analysisId: a.id, limit: 10 });
    expect(audit.map((e) => [e.actor, e.action, e.outcome, e.profile])).toEqual([
      [CLINICIAN, 'writeback.approve', 'written', 'fhir-standard'],
      [CLINICIAN, 'writeback.approve', 'already-done', 'fhir-standard'],
    ]);
    expect(audit[0]!.fhirOrigin).toBe(new URL(fhir.baseUrl).origin);
    expect(audit[0]!.resources).toContain(`DiagnosticReport/${dr.id}`);
    expect(JSON.stringify(audit)).not.toMatch(/NPDR|refer within/);
    // Discarding a filed report changes nothing.
    expect(await svc.run('discard', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN })).toMatchObject({ kind: 'conflict', done: 'approve' });
  });

  it('a random-weights draft keeps its TEST MODEL banner in the filed conclusion whatever the clinician typed', async () => {
    fhir.ehrProfile = 'standard';
    const a = analysis('an-random', { model: RANDOM_MODEL });
    await service('fhir-standard').svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'No retinopathy.' });
    const dr = (await get('/DiagnosticReport?identifier=urn:volmo-cds:writeback|an-random/DiagnosticReport')).entry[0].resource;
    expect(dr.conclusion).toMatch(/^TEST MODEL WITH RANDOM WEIGHTS.*No retinopathy\.$/);
    expect(dr.meta.tag.map((t: any) => t.code)).toContain('HTEST');
  });

  it('discard: nothing written when no draft is in the EHR; a written draft becomes entered-in-error; approval after discard changes nothing', async () => {
    fhir.ehrProfile = 'standard';
    const { svc, store } = service('fhir-standard');
    const a = analysis('an-discard-none');
    expect(await svc.run('discard', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN })).toMatchObject({ kind: 'written', resources: [] });
    expect(await count('/DiagnosticReport?identifier=urn:volmo-cds:writeback|an-discard-none/DiagnosticReport')).toBe(0);
    expect((await store.audit.list({ analysisId: a.id, limit: 5 }))[0]).toMatchObject({ outcome: 'nothing-to-write' });
    expect(await svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'x' })).toMatchObject({ kind: 'conflict', done: 'discard' });
    expect(await count('/DiagnosticReport?identifier=urn:volmo-cds:writeback|an-discard-none/DiagnosticReport')).toBe(0);

    const b = analysis('an-discard-written');
    await ensureDraft(client, b.result, b.id);
    expect(await svc.run('discard', { fhir: client, analysisId: b.id, result: b.result, clinician: CLINICIAN })).toMatchObject({ kind: 'written' });
    const dr = (await get('/DiagnosticReport?identifier=urn:volmo-cds:writeback|an-discard-written/DiagnosticReport')).entry[0].resource;
    expect(dr.status).toBe('entered-in-error');
  });
});

describe('fhir-standard against a server that refuses it (Epic)', () => {
  it("the refusal carries the server's reason; nothing is marked done, and a later attempt may try again", async () => {
    fhir.ehrProfile = 'epic';
    const { svc, store } = service('fhir-standard');
    const a = analysis('an-refused');
    const out = await svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'x' });
    expect(out).toMatchObject({ kind: 'refused', status: 403, reason: 'Device create is not available on Epic' });
    expect(await svc.done(fhir.baseUrl, a.id)).toBeUndefined();
    expect((await store.writeback.get(idempotencyKey(fhir.baseUrl, a.id, 'approve')))?.state).toBe('refused');
    expect((await store.audit.list({ analysisId: a.id, limit: 5 })).map((e) => [e.outcome, e.httpStatus])).toEqual([['refused', 403]]);
    fhir.ehrProfile = 'standard';
    expect((await svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'x' })).kind).toBe('written');
    expect(await svc.done(fhir.baseUrl, a.id)).toBe('approve');
  });
});

describe('epic: an unsigned clinical note', () => {
  it('approve writes one preliminary DocumentReference in the encounter, no DiagnosticReport; a repeat writes nothing', async () => {
    fhir.ehrProfile = 'epic';
    const { svc, store } = service('epic');
    const a = analysis('an-epic', { model: RANDOM_MODEL });
    const out = await svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'Mild NPDR.' });
    expect(out).toMatchObject({ kind: 'written', profile: 'epic' });
    const docs = (await get('/DocumentReference?identifier=urn:volmo-cds:writeback|an-epic/DocumentReference/approve')).entry;
    expect(docs).toHaveLength(1);
    const doc = docs[0].resource;
    expect([doc.status, doc.docStatus, doc.context.encounter[0].reference, doc.content[0].attachment.contentType]).toEqual(['current', 'preliminary', ctx.encounter, 'text/plain']);
    const text = Buffer.from(doc.content[0].attachment.data, 'base64').toString('utf8');
    expect(text).toMatch(/TEST MODEL WITH RANDOM WEIGHTS — NOT CLINICAL OUTPUT\. Mild NPDR\./);
    expect(text).toContain('for signing');
    expect(await count('/DiagnosticReport?identifier=urn:volmo-cds:writeback|an-epic/DiagnosticReport')).toBe(0);
    expect((await svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'again' })).kind).toBe('already');
    expect(await count('/DocumentReference?identifier=urn:volmo-cds:writeback|an-epic/DocumentReference/approve')).toBe(1);
    expect((await store.audit.list({ analysisId: a.id, limit: 5 })).map((e) => e.outcome)).toEqual(['written', 'already-done']);
  });

  it('an interrupted write (record left pending) is reconciled with the EHR: found there, nothing is written again', async () => {
    fhir.ehrProfile = 'epic';
    const a = analysis('an-epic-crash');
    const first = service('epic');
    await first.svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'x' });
    // The same write seen from a store whose record never left `pending` (a crash after the EHR's 201).
    const { svc, store } = service('epic');
    await store.writeback.begin({ key: idempotencyKey(fhir.baseUrl, a.id, 'approve'), analysisId: a.id, action: 'approve', profile: 'epic' });
    expect((await svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'x' })).kind).toBe('in-progress');
    clock += 120_000;
    const out = await svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'x' });
    expect(out.kind).toBe('already');
    expect(await count('/DocumentReference?identifier=urn:volmo-cds:writeback|an-epic-crash/DocumentReference/approve')).toBe(1);
  });

  it('without an encounter the note is refused before any call, with the reason', async () => {
    fhir.ehrProfile = 'epic';
    const a = analysis('an-epic-noenc', { encounter: false });
    const out = await service('epic').svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'x' });
    expect(out).toMatchObject({ kind: 'refused' });
    expect((out as { reason: string }).reason).toMatch(/encounter/);
  });

  it('the Epic-like server itself refuses a note without an encounter and a DiagnosticReport create', async () => {
    fhir.ehrProfile = 'epic';
    await expect(client.create({ resourceType: 'DocumentReference', status: 'current', docStatus: 'preliminary', subject: { reference: ctx.patient }, content: [{ attachment: { contentType: 'text/plain', data: 'eA==' } }] })).rejects.toMatchObject({ upstreamStatus: 422, outcomeText: expect.stringMatching(/encounter/) });
    await expect(client.create({ resourceType: 'DiagnosticReport', status: 'preliminary', code: { text: 'x' } })).rejects.toMatchObject({ upstreamStatus: 403 });
  });
});

describe('oracle: a signed note only after approval', () => {
  it('discard writes nothing; approve writes one final DocumentReference authored by the clinician', async () => {
    fhir.ehrProfile = 'oracle';
    const { svc } = service('oracle');
    const d = analysis('an-oracle-discard');
    expect(await svc.run('discard', { fhir: client, analysisId: d.id, result: d.result, clinician: CLINICIAN })).toMatchObject({ kind: 'written', resources: [] });
    const a = analysis('an-oracle');
    const out = await svc.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'Refer routinely.' });
    expect(out).toMatchObject({ kind: 'written', profile: 'oracle' });
    const doc = (await get('/DocumentReference?identifier=urn:volmo-cds:writeback|an-oracle/DocumentReference/approve')).entry[0].resource;
    expect([doc.status, doc.docStatus, doc.author[0].reference]).toEqual(['current', 'final', CLINICIAN]);
    expect(doc.context.period.end).toBe(new Date(clock).toISOString());
    await expect(client.create({ ...doc, id: undefined, docStatus: 'preliminary' })).rejects.toMatchObject({ upstreamStatus: 422 });
  });
});
