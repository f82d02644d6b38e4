/**
 * The AI draft written back in the background, end to end: the service with its sandbox (`npm start` path:
 * SQLite store, jobs, the tiny test model, the service's Backend Services client registered with the sandbox
 * auth server), the sandbox FHIR server behaving like each EHR. A signed order-sign hook starts the analysis
 * job; when it finishes the draft job writes, with nobody opening the app:
 *   standard  a preliminary DiagnosticReport + Observations + Provenance; Approve & file (the app, the
 *             clinician's token) makes that same report final — no second report;
 *   epic      an unsigned (preliminary) note, no DiagnosticReport; approval updates that note;
 *   oracle    nothing before approval; one final note after.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYSIS_EXTENSION } from '../../src/cds/cards.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { READ_SCOPES, SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { buildTiny } from '../model/model-harness.js';
import { CookieJarClient, ehrBackendToken, fixturePatientId, startLaunchService, type CapturedService } from '../launch/smart-launch-flow.js';
import { until } from '../helpers/until.js';

const CLINICIAN = 'Practitioner/dr-background-1';
const diabetic = listFixturePatients().find((p) => p.key === 'diabetic')!;
let modelDir: string;

beforeAll(async () => {
  modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-bgwb-model-')) })).outDir;
}, 120_000);

function start(ehr: 'standard' | 'epic' | 'oracle'): Promise<CapturedService> {
  return startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_SANDBOX_EHR_PROFILE: ehr, VOLMO_WATCH: 'false', VOLMO_JOB_POLL_MS: '100', VOLMO_HOOK_WAIT_MS: '0' });
}

/** The sandbox FHIR server's store, read directly (the EHR-side clients hold no DiagnosticReport/Provenance search scope). */
async function search(s: CapturedService, path: string): Promise<any[]> {
  return (await s.svc.sandbox!.fhir.repo.searchResources(parseSearchRequest(path.replace(/^\//, '')))) as any[];
}


/** An order-sign hook for the patient (in an encounter when given); the analysis id its card names. */
async function hook(s: CapturedService, patientId: string, encounterId?: string): Promise<string> {
  const sb = s.svc.sandbox!;
  const token = await ehrBackendToken(s.svc, READ_SCOPES.map((r) => `system/${r}.rs`).join(' '));
  const res = await sb.ehr.callHook({
    serviceUrl: `${s.svc.url}/cds-services/volmo-eye-exam-order-sign`,
    hook: 'order-sign',
    context: { userId: CLINICIAN, patientId, ...(encounterId ? { encounterId } : {}), draftOrders: draftOrders(eyeExamOrder(patientId)) },
    fhirServer: sb.fhirBaseUrl,
    fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
  });
  expect(res.status).toBe(200);
  const id = (res.body as { cards: { extension?: Record<string, unknown> }[] }).cards[0]?.extension?.[ANALYSIS_EXTENSION];
  expect(typeof id).toBe('string');
  return id as string;
}

async function jobs(s: CapturedService, state: string): Promise<{ id: string; kind: string; analysisId?: string; state: string; errorKind?: string }[]> {
  return ((await (await fetch(`${s.svc.url}/admin/jobs?state=${state}`)).json()) as { jobs: { id: string; kind: string; analysisId?: string; state: string }[] }).jobs;
}

/** Opens the app as the clinician (EHR launch) and posts Approve & file with `conclusion`. */
async function approve(s: CapturedService, patientId: string, analysisId: string, conclusion: string, encounter?: string) {
  const sb = s.svc.sandbox!;
  const browser = new CookieJarClient();
  const q = new URLSearchParams({ iss: sb.fhirBaseUrl, launch: sb.auth.createLaunch({ patient: patientId, fhirUser: CLINICIAN, ...(encounter ? { encounter } : {}), appContext: JSON.stringify({ analysis: analysisId }) }) });
  const page = await browser.follow(`${s.svc.url}/launch?${q}`);
  expect(page.status).toBe(200);
  const v = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(page.body)?.[1];
  expect(v('analysis')).toBe(analysisId);
  const cookie = browser.hops.flatMap((h) => h.setCookies).map((c) => c.split(';')[0]!).join('; ');
  const res = await fetch(`${new URL(browser.hops.at(-1)!.url).origin}/app/review`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, redirect: 'manual',
    body: new URLSearchParams({ session: v('session')!, csrf: v('csrf')!, analysis: analysisId, action: 'approve', conclusion }).toString(),
  });
  return { status: res.status, body: await res.text() };
}

const ours = (resources: any[], id: string) => resources.filter((r) => (r.identifier ?? []).some((i: any) => String(i.value).startsWith(`${id}/`)));

describe('standard (fhir-standard): a preliminary report at analysis time, made final on approval', () => {
  let s: CapturedService;
  beforeAll(async () => {
    s = await start('standard');
  }, 120_000);
  afterAll(async () => s?.svc.close());

  it('writes the draft without anyone opening the app; approval finalises that same report', async () => {
    const patientId = await fixturePatientId(s.svc, diabetic.mrn);
    expect(await search(s, `/DiagnosticReport?subject=Patient/${patientId}`)).toHaveLength(0);
    const id = await hook(s, patientId);
    const [report] = await until('the background draft report', async () => {
      const found = await search(s, `/DiagnosticReport?identifier=urn:volmo-cds:writeback|${id}/DiagnosticReport`);
      return found.length ? found : undefined;
    });
    expect(report.status).toBe('preliminary');
    expect(report.conclusion).toMatch(/TEST MODEL WITH RANDOM WEIGHTS/);
    expect(await search(s, `/Observation?identifier=urn:volmo-cds:writeback|${id}/Observation/0`)).toHaveLength(1);
    expect(await search(s, `/Provenance?_tag=urn:volmo-cds:writeback|${id}/Provenance/draft`)).toHaveLength(1);
    const done = await until('the draft job done', async () => (await jobs(s, 'done')).find((j) => j.kind === 'draft-writeback'));
    expect(done.analysisId).toBe(id);
    expect(s.logs.join('')).toMatch(/"outcome":"written"[^\n]*"msg":"background draft write-back"/);
    // What VOLMO wrote (report, observations) is not new evidence: the next hook finds the same analysis.
    expect(await hook(s, patientId)).toBe(id);

    const ok = await approve(s, patientId, id, 'Moderate NPDR right eye; refer within 3 months.');
    expect(ok.body).toContain('Approved and filed');
    const reports = await search(s, `/DiagnosticReport?subject=Patient/${patientId}`);
    expect(reports.map((r) => [r.id, r.status])).toEqual([[report.id, 'final']]);
    expect(reports[0].performer).toEqual([{ reference: CLINICIAN }]);
    expect(s.logs.join('')).not.toContain('Moderate NPDR right eye');

    // The audit trail, readable by operators: the background write by `system`, then the clinician's approval.
    const audit = (await (await fetch(`${s.svc.url}/admin/audit?analysis=${id}`)).json()) as { audit: { actor: string; action: string; outcome: string; resources: string[]; at: string }[] };
    expect(audit.audit.map((e) => [e.actor, e.action, e.outcome])).toEqual([['system', 'writeback.draft', 'written'], [CLINICIAN, 'writeback.approve', 'written']]);
    expect(audit.audit[0]!.resources).toContain(`DiagnosticReport/${report.id}`);
    expect(Number.isNaN(Date.parse(audit.audit[0]!.at))).toBe(false);
    expect(JSON.stringify(audit)).not.toContain('Moderate NPDR');
    expect((await fetch(`${s.svc.url}/admin/audit?analysis=..%2Fx`)).status).toBe(400);
    expect((await fetch(`${s.svc.url}/admin/audit?since=yesterday`)).status).toBe(400);
  }, 180_000);
});

describe('epic: an unsigned note at analysis time, no DiagnosticReport; approval updates it', () => {
  let s: CapturedService;
  beforeAll(async () => {
    s = await start('epic');
  }, 120_000);
  afterAll(async () => s?.svc.close());

  it('a preliminary DocumentReference in the encounter, updated (not added to) by approval', async () => {
    const patientId = await fixturePatientId(s.svc, diabetic.mrn);
    const encounterId = (await search(s, `/Encounter?patient=Patient/${patientId}`))[0].id as string;
    const id = await hook(s, patientId, encounterId);
    const [note] = await until('the background note', async () => {
      const found = await search(s, `/DocumentReference?identifier=urn:volmo-cds:writeback|${id}/DocumentReference/draft`);
      return found.length ? found : undefined;
    });
    expect([note.status, note.docStatus, note.context.encounter[0].reference]).toEqual(['current', 'preliminary', `Encounter/${encounterId}`]);
    expect(Buffer.from(note.content[0].attachment.data, 'base64').toString('utf8')).toMatch(/not yet reviewed[\s\S]*TEST MODEL WITH RANDOM WEIGHTS/);
    expect(await search(s, `/DiagnosticReport?subject=Patient/${patientId}`)).toHaveLength(0);
    // The note is VOLMO's own: not evidence, so the next hook finds the same analysis (no new one, no second note).
    expect(await hook(s, patientId, encounterId)).toBe(id);

    const ok = await approve(s, patientId, id, 'Mild NPDR both eyes.', encounterId);
    expect(ok.body).toContain('Approved and filed');
    const notes = ours(await search(s, `/DocumentReference?subject=Patient/${patientId}`), id);
    expect(notes.map((n) => n.id)).toEqual([note.id]);
    expect([notes[0].docStatus, notes[0].author?.[0]?.reference]).toEqual(['preliminary', CLINICIAN]);
    expect(Buffer.from(notes[0].content[0].attachment.data, 'base64').toString('utf8')).toMatch(/for signing[\s\S]*Mild NPDR both eyes\./);
    expect(await search(s, `/DiagnosticReport?subject=Patient/${patientId}`)).toHaveLength(0);
  }, 180_000);
});

describe('oracle: nothing before approval', () => {
  let s: CapturedService;
  beforeAll(async () => {
    s = await start('oracle');
  }, 120_000);
  afterAll(async () => s?.svc.close());

  it('no draft job and nothing written when the analysis finishes; one final note after approval', async () => {
    const patientId = await fixturePatientId(s.svc, diabetic.mrn);
    const encounterId = (await search(s, `/Encounter?patient=Patient/${patientId}`))[0].id as string;
    const id = await hook(s, patientId, encounterId);
    await until('the analysis job done', async () => (await jobs(s, 'done')).find((j) => j.id === id));
    await new Promise((r) => setTimeout(r, 500)); // a follow-up would have been queued with the completion
    expect((await jobs(s, 'done')).concat(await jobs(s, 'queued'), await jobs(s, 'running'), await jobs(s, 'dead')).filter((j) => j.kind === 'draft-writeback')).toEqual([]);
    expect(ours(await search(s, `/DocumentReference?subject=Patient/${patientId}`), id)).toEqual([]);
    expect(await search(s, `/DiagnosticReport?subject=Patient/${patientId}`)).toHaveLength(0);

    const ok = await approve(s, patientId, id, 'Refer routinely.', encounterId);
    expect(ok.body).toContain('Approved and filed');
    const notes = ours(await search(s, `/DocumentReference?subject=Patient/${patientId}`), id);
    expect(notes.map((n) => [n.docStatus, n.author[0].reference])).toEqual([['final', CLINICIAN]]);
  }, 180_000);
});
