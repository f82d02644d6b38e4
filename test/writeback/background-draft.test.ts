/**
 * The AI draft written in the background as a job (src/writeback/background.ts): queued by `queueFollowUps`
 * on a SQLite store, claimed by the real JobRunner, written by WritebackService to the real sandbox FHIR
 * server (behaving like each EHR) through a loopback proxy that can fail the next N writes (503) or answer
 * after the client gave up (a timeout after the write happened). What must hold: one draft whatever the
 * retries (same idempotency key), a refusal ends the job (dead, audit `refused`, nothing done), approval turns
 * the background draft final / updates the background note instead of adding one, oracle gets no job.
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../../src/analysis/analyse.js';
import { analysisSubject } from '../../src/analysis/analysis-cache.js';
import { dispatchJob, queueFollowUps, type AnyJobPayload } from '../../src/analysis/job-kinds.js';
import { JobRunner } from '../../src/analysis/job-runner.js';
import { classifyAnalysisFailure, type AnalysisJobPayload } from '../../src/analysis/pipeline.js';
import type { ExamContext } from '../../src/findings/types.js';
import { HttpFhirClient } from '../../src/fhir/http-client.js';
import { anonymousTokenSource } from '../../src/fhir/token-source.js';
import { silentLogger } from '../../src/log.js';
import { createGuardedFetch, type GuardedFetch } from '../../src/net/guarded-fetch.js';
import { NetError } from '../../src/net/net-error.js';
import { startFhirServer, type FhirSandbox } from '../../src/sandbox/fhir-server.js';
import type { VolmoStore } from '../../src/store/port.js';
import { backgroundDraftProfile, draftJobKey, runDraftJob, subjectFhirBase } from '../../src/writeback/background.js';
import { idempotencyKey } from '../../src/writeback/identifiers.js';
import type { WritebackProfileName } from '../../src/writeback/profiles.js';
import { WritebackService } from '../../src/writeback/service.js';
import { MODEL, RANDOM_MODEL, diabeticAnswers } from '../findings/exam-fixtures.js';
import { buildFor } from '../reports/report-fixtures.js';
import { diabeticOnServer } from './diabetic-on-server.js';
import { open, writeKeyFile } from '../store/helpers.js';

const CLINICIAN = 'Practitioner/dr-eye-7';
let fhir: FhirSandbox;
let proxy: Server;
let proxyBase: string;
let gf: GuardedFetch;
let client: HttpFhirClient;
let ctx: ExamContext;
let store: VolmoStore;
const dir = mkdtempSync(join(tmpdir(), 'volmo-bg-draft-'));

/** What the proxy does to the next matching requests: answer `status` without forwarding, or forward and answer after `delayMs`. */
let fault: { match: (method: string, path: string) => boolean; times: number; status?: number; delayMs?: number } | undefined;
const seen: { method: string; path: string; answered: number }[] = [];
/** Requests as they arrive (before any delay). */
const arrived: { method: string; path: string }[] = [];
const runners: JobRunner<AnyJobPayload>[] = [];

async function get(path: string): Promise<any> {
  return (await fetch(`${fhir.baseUrl}${path}`, { headers: { accept: 'application/fhir+json' } })).json();
}
const entries = async (path: string) => (await get(path)).entry ?? [];

function analysis(id: string, model = MODEL): { id: string; result: AnalysisResult } {
  const report = buildFor(ctx, diabeticAnswers, { model });
  return { id, result: { report, model, context: ctx } as unknown as AnalysisResult };
}

async function stored(id: string, model = MODEL) {
  const a = analysis(id, model);
  await store.analyses.save({ id, key: `key-${id}`, subject: analysisSubject(proxyBase, ctx.patient.replace(/^Patient\//, '')), references: [], modelSha: model.manifestSha256, startedAt: Date.now(), finishedAt: Date.now(), result: a.result });
  return a;
}

function writebackFor(profile: WritebackProfileName) {
  return new WritebackService({ store, settings: { profile: 'off', byServer: { [proxyBase]: profile } }, log: silentLogger() });
}

/** The replica's side: follow-ups queued as after an analysis job, and a runner that claims them. */
function replica(profile: WritebackProfileName, writer?: HttpFhirClient) {
  const writeback = writebackFor(profile);
  const settings = { profile: 'off' as const, byServer: { [proxyBase]: profile } };
  const runner = new JobRunner<AnyJobPayload>({
    queue: store.jobs,
    handle: dispatchJob({
      analysis: async () => {
        throw new Error('no analysis jobs here');
      },
      draft: (job) => runDraftJob({ writeback, analyses: store.analyses, writerFor: (b) => (b === proxyBase ? (writer ?? client) : undefined), log: silentLogger() }, job),
    }),
    classify: classifyAnalysisFailure,
    concurrency: 1,
    leaseMs: 10_000,
    pollMs: 50,
    retryBaseMs: 100,
    log: silentLogger(),
  }).start();
  runners.push(runner);
  const followUps = queueFollowUps({
    queue: store.jobs,
    maxAttempts: 4,
    assessPlan: false,
    draftBase: (subject) => {
      const base = subjectFhirBase(subject);
      return base && backgroundDraftProfile(settings, [proxyBase], base) ? base : undefined;
    },
    log: silentLogger(),
    onQueued: () => runner.poke(),
  });
  const finished = (id: string) => store.jobs.findByKey(draftJobKey(proxyBase, id));
  return {
    writeback,
    runner,
    analysed: (a: { id: string; result: AnalysisResult }) => followUps({ id: a.id, subject: analysisSubject(proxyBase, ctx.patient.replace(/^Patient\//, '')), result: a.result }, {} as AnalysisJobPayload),
    settled: async (id: string) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const job = await finished(id);
        if (job && (job.state === 'done' || job.state === 'dead')) return job;
        if (Date.now() > deadline) throw new Error(`draft job of ${id} did not settle: ${JSON.stringify(job)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

beforeAll(async () => {
  fhir = await startFhirServer({ authIssuer: 'http://127.0.0.1:9/issuer', log: silentLogger(), requireAuth: false });
  const upstream = new URL(fhir.baseUrl);
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = req.url!.replace(/^\/fhir\/R4/, '');
        arrived.push({ method: req.method!, path });
        const rule = fault && fault.times > 0 && fault.match(req.method!, path) ? fault : undefined;
        if (rule) rule.times--;
        if (rule?.status) {
          seen.push({ method: req.method!, path, answered: rule.status });
          res.writeHead(rule.status, { 'content-type': 'application/fhir+json' });
          res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient', diagnostics: 'try again later' }] }));
          return;
        }
        const headers: Record<string, string> = {};
        for (const h of ['content-type', 'accept', 'if-match', 'if-none-exist', 'prefer']) if (req.headers[h]) headers[h] = String(req.headers[h]);
        const up = await fetch(`${upstream.origin}${req.url}`, { method: req.method, headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
        const body = Buffer.from(await up.arrayBuffer());
        if (rule?.delayMs) await new Promise((r) => setTimeout(r, rule.delayMs));
        seen.push({ method: req.method!, path, answered: up.status });
        const out: Record<string, string> = {};
        for (const h of ['content-type', 'location', 'etag']) {
          const v = up.headers.get(h);
          if (v) out[h] = v;
        }
        if (res.destroyed) return;
        res.writeHead(up.status, out);
        res.end(body);
      })().catch(() => res.destroy());
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyBase = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/fhir/R4`;
  gf = createGuardedFetch({ allow: [proxyBase], timeoutMs: 1500, retry: { maxRetries: 0 } });
  client = new HttpFhirClient({ baseUrl: proxyBase, fetch: gf, tokens: anonymousTokenSource });
  ctx = await diabeticOnServer(fhir, get);
  store = await open(`sqlite:${join(dir, 'volmo.db')}`, writeKeyFile(dir));
}, 60_000);

afterAll(async () => {
  await store?.close();
  gf?.close();
  await new Promise((r) => proxy?.close(r));
  await fhir?.close();
});

afterEach(async () => {
  await Promise.all(runners.splice(0).map((r) => r.stop()));
});

beforeEach(() => {
  fault = undefined;
  seen.length = 0;
  arrived.length = 0;
  fhir.ehrProfile = 'standard';
});

const drCount = async (id: string) => (await entries(`/DiagnosticReport?identifier=urn:volmo-cds:writeback|${id}/DiagnosticReport`)).length;

describe('fhir-standard: the draft written when the analysis finishes', () => {
  it('a preliminary report with its observations and provenance, actor system; approval makes that same report final', async () => {
    const r = replica('fhir-standard');
    const a = await stored('bg-std', RANDOM_MODEL);
    await r.analysed(a);
    const job = await r.settled(a.id);
    expect(job).toMatchObject({ state: 'done', attempts: 1, analysisId: a.id });
    const drs = await entries(`/DiagnosticReport?identifier=urn:volmo-cds:writeback|${a.id}/DiagnosticReport`);
    expect(drs).toHaveLength(1);
    const dr = drs[0].resource;
    expect(dr.status).toBe('preliminary');
    expect(dr.conclusion).toMatch(/^TEST MODEL WITH RANDOM WEIGHTS/); // the test model's label stays in what is written
    expect(await entries(`/Observation?identifier=urn:volmo-cds:writeback|${a.id}/Observation/0`)).toHaveLength(1);
    expect(await entries(`/Provenance?_tag=urn:volmo-cds:writeback|${a.id}/Provenance/draft`)).toHaveLength(1);
    const audit = await store.audit.list({ analysisId: a.id, limit: 10 });
    expect(audit.map((e) => [e.actor, e.action, e.outcome, e.profile])).toEqual([['system', 'writeback.draft', 'written', 'fhir-standard']]);
    expect(audit[0]!.resources).toContain(`DiagnosticReport/${dr.id}`);

    // Queued again (another replica saw the analysis finish too): the job is done while the analysis is retained.
    await r.analysed(a);
    expect((await store.jobs.findByKey(draftJobKey(proxyBase, a.id)))?.attempts).toBe(1);

    const out = await r.writeback.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'Mild NPDR, rescreen in 12 months.' });
    expect(out.kind).toBe('written');
    expect(await drCount(a.id)).toBe(1);
    const final = await get(`/DiagnosticReport/${dr.id}`);
    expect(final.status).toBe('final');
    expect(final.conclusion).toMatch(/Mild NPDR, rescreen in 12 months\.$/);
  });

  it('5xx twice: retried with the same idempotency key, done once the server recovers, one report', async () => {
    const r = replica('fhir-standard');
    const a = await stored('bg-503');
    fault = { match: (m, p) => m === 'POST' && p === '', times: 2, status: 503 };
    await r.analysed(a);
    const job = await r.settled(a.id);
    expect(job).toMatchObject({ state: 'done', attempts: 3 });
    expect(seen.filter((s) => s.method === 'POST' && s.path === '').map((s) => s.answered)).toEqual([503, 503, 200]);
    expect(await drCount(a.id)).toBe(1);
    const audit = await store.audit.list({ analysisId: a.id, limit: 10 });
    expect(audit.map((e) => [e.outcome, e.httpStatus])).toEqual([['failed', 503], ['failed', 503], ['written', undefined]]);
    // One idempotency record for the draft, the same key throughout.
    const records = await store.writeback.forAnalysis(a.id);
    expect(records.map((x) => [x.key, x.action, x.state])).toEqual([[idempotencyKey(proxyBase, a.id, 'draft'), 'draft', 'done']]);
  });

  it('a timeout after the server wrote the draft: the retry finds it (same key), no second report', async () => {
    const r = replica('fhir-standard');
    const a = await stored('bg-timeout');
    fault = { match: (m, p) => m === 'POST' && p === '', times: 1, delayMs: 2500 };
    await r.analysed(a);
    const job = await r.settled(a.id);
    expect(job).toMatchObject({ state: 'done', attempts: 2 });
    expect(await drCount(a.id)).toBe(1);
    expect(arrived.filter((s) => s.method === 'POST' && s.path === '')).toHaveLength(1); // the retry found it and wrote nothing
    expect((await store.audit.list({ analysisId: a.id, limit: 10 })).map((e) => [e.outcome, e.httpStatus])).toEqual([['failed', undefined], ['written', undefined]]);
  });

  it('the EHR refusing (4xx): dead after one attempt, audit `refused` with the status, nothing marked done', async () => {
    fhir.ehrProfile = 'epic'; // refuses Device create: a server that is not what its profile says
    const r = replica('fhir-standard');
    const a = await stored('bg-refused');
    await r.analysed(a);
    const job = await r.settled(a.id);
    expect(job).toMatchObject({ state: 'dead', attempts: 1, errorKind: 'ehr_refused' });
    expect((await store.audit.list({ analysisId: a.id, limit: 10 })).map((e) => [e.actor, e.outcome, e.httpStatus])).toEqual([['system', 'refused', 403]]);
    expect((await store.writeback.get(idempotencyKey(proxyBase, a.id, 'draft')))?.state).toBe('refused');
    expect(await r.writeback.done(proxyBase, a.id)).toBeUndefined();
    expect((await store.jobs.list({ state: 'dead', limit: 10 })).map((j) => j.key)).toContain(draftJobKey(proxyBase, a.id));
  });

  it('the EHR refusing this service\'s Backend Services sign-in: dead after one attempt as a refusal, nothing sent to the FHIR server', async () => {
    const refusedSignIn = new HttpFhirClient({
      baseUrl: proxyBase,
      fetch: gf,
      tokens: {
        getToken: async () => {
          throw new NetError('http_status', 'http://127.0.0.1:1', 'token endpoint refused the request: HTTP 401 invalid_client', { upstreamStatus: 401, code: 'upstream_refused' });
        },
      },
    });
    const r = replica('fhir-standard', refusedSignIn);
    const a = await stored('bg-signin-refused');
    const before = arrived.length;
    await r.analysed(a);
    const job = await r.settled(a.id);
    expect(job).toMatchObject({ state: 'dead', attempts: 1, errorKind: 'ehr_refused' });
    expect(arrived.length).toBe(before);
    expect((await store.audit.list({ analysisId: a.id, limit: 10 })).map((e) => [e.actor, e.outcome])).toEqual([['system', 'refused']]);
    expect((await store.writeback.get(idempotencyKey(proxyBase, a.id, 'draft')))?.state).toBe('refused');
  });
});

describe('epic: an unsigned note at analysis time', () => {
  it('a preliminary note, no DiagnosticReport; approval updates that note (the conclusion, still unsigned) instead of adding one', async () => {
    fhir.ehrProfile = 'epic';
    const r = replica('epic');
    const a = await stored('bg-epic', RANDOM_MODEL);
    await r.analysed(a);
    expect(await r.settled(a.id)).toMatchObject({ state: 'done', attempts: 1 });
    const notes = await entries(`/DocumentReference?patient=${ctx.patient}&identifier=urn:volmo-cds:writeback|${a.id}/DocumentReference/draft`);
    expect(notes).toHaveLength(1);
    const note = notes[0].resource;
    expect([note.status, note.docStatus, note.context.encounter[0].reference, note.content[0].attachment.contentType, note.author]).toEqual(['current', 'preliminary', ctx.encounter, 'text/plain', undefined]);
    expect(Buffer.from(note.content[0].attachment.data, 'base64').toString('utf8')).toMatch(/not yet reviewed[\s\S]*TEST MODEL WITH RANDOM WEIGHTS/);
    expect(await drCount(a.id)).toBe(0);

    const out = await r.writeback.run('approve', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN, conclusion: 'Mild NPDR.' });
    expect(out).toMatchObject({ kind: 'written', resources: [`DocumentReference/${note.id}`] });
    const ours = (await entries(`/DocumentReference?patient=${ctx.patient}`)).filter((e: any) => (e.resource.identifier ?? []).some((i: any) => i.value.startsWith(`${a.id}/`)));
    expect(ours.map((e: any) => e.resource.id)).toEqual([note.id]);
    const updated = await get(`/DocumentReference/${note.id}`);
    expect([updated.docStatus, updated.author[0].reference]).toEqual(['preliminary', CLINICIAN]);
    expect(Buffer.from(updated.content[0].attachment.data, 'base64').toString('utf8')).toMatch(/for signing[\s\S]*Mild NPDR\./);
    // A lost record of the approval is reconciled with the note found by its approve identifier.
    expect((await entries(`/DocumentReference?identifier=urn:volmo-cds:writeback|${a.id}/DocumentReference/approve`)).map((e: any) => e.resource.id)).toEqual([note.id]);
  });

  it('discard marks the background note entered-in-error', async () => {
    fhir.ehrProfile = 'epic';
    const r = replica('epic');
    const a = await stored('bg-epic-discard');
    await r.analysed(a);
    expect(await r.settled(a.id)).toMatchObject({ state: 'done' });
    const out = await r.writeback.run('discard', { fhir: client, analysisId: a.id, result: a.result, clinician: CLINICIAN });
    expect(out.kind).toBe('written');
    const note = (await entries(`/DocumentReference?identifier=urn:volmo-cds:writeback|${a.id}/DocumentReference/draft`))[0].resource;
    expect(note.status).toBe('entered-in-error');
  });
});

describe('which analyses get a background draft', () => {
  it('oracle and off: no job at all; a base not named in VOLMO_WRITEBACK_BACKGROUND: none either', async () => {
    const r = replica('oracle');
    const a = await stored('bg-oracle');
    await r.analysed(a);
    expect(await store.jobs.findByKey(draftJobKey(proxyBase, a.id))).toBeUndefined();
    const settings = { profile: 'fhir-standard' as const, byServer: { 'https://ehr.example/fhir': 'oracle' as const, 'https://off.example/fhir': 'off' as const } };
    expect(backgroundDraftProfile(settings, ['https://ehr.example/fhir', 'https://off.example/fhir', 'https://std.example/fhir/'], 'https://ehr.example/fhir')).toBeUndefined();
    expect(backgroundDraftProfile(settings, ['https://off.example/fhir'], 'https://off.example/fhir')).toBeUndefined();
    expect(backgroundDraftProfile(settings, ['https://std.example/fhir/'], 'https://std.example/fhir')).toBe('fhir-standard');
    expect(backgroundDraftProfile(settings, [], 'https://std.example/fhir')).toBeUndefined();
    expect(subjectFhirBase('https://std.example/fhir|Patient/1')).toBe('https://std.example/fhir');
    expect(subjectFhirBase('cds-client:https://ehr.example|Patient/1')).toBeUndefined();
  });
});
