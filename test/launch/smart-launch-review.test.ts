/**
 * The clinician's loop through HTTP with a real EHR launch: a hook produces a draft (tiny test model), the
 * app shows it with "what will be written, and where", Approve & file (CSRF-bound to the session) writes a
 * final DiagnosticReport with the edited conclusion to the sandbox FHIR server; a second approval changes
 * nothing; a form without the session's CSRF token is refused; under the Epic-like sandbox a refused write
 * shows the EHR's reason and nothing is marked filed.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { READ_SCOPES, SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { buildTiny } from '../model/model-harness.js';
import { CookieJarClient, ehrBackendToken, fixturePatientId, startLaunchService, type CapturedService } from './smart-launch-flow.js';

let s: CapturedService;
const diabetic = listFixturePatients().find((p) => p.key === 'diabetic')!;
const CLINICIAN = 'Practitioner/dr-review-1';

beforeAll(async () => {
  const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-review-model-')) })).outDir;
  s = await startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_HOOK_WAIT_MS: '60000', VOLMO_DATABASE_URL: 'memory:' });
}, 120_000);
afterAll(async () => {
  await s?.svc.close();
});

/** Runs order-sign for the patient; returns the `appContext` of the card's smart link. */
async function analysed(patientId: string): Promise<string> {
  const sb = s.svc.sandbox!;
  const token = await ehrBackendToken(s.svc, READ_SCOPES.map((r) => `system/${r}.rs`).join(' '));
  const res = await sb.ehr.callHook({
    serviceUrl: `${s.svc.url}/cds-services/volmo-eye-exam-order-sign`,
    hook: 'order-sign',
    context: { userId: CLINICIAN, patientId, draftOrders: draftOrders(eyeExamOrder(patientId)) },
    fhirServer: sb.fhirBaseUrl,
    fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
  });
  expect(res.status).toBe(200);
  const links = (res.body as { cards: { links?: { type: string; appContext?: string }[] }[] }).cards.flatMap((c) => c.links ?? []);
  return links.find((l) => l.type === 'smart')!.appContext!;
}

async function launch(patientId: string, appContext?: string) {
  const sb = s.svc.sandbox!;
  const browser = new CookieJarClient();
  const q = new URLSearchParams({ iss: sb.fhirBaseUrl, launch: sb.auth.createLaunch({ patient: patientId, fhirUser: CLINICIAN, ...(appContext ? { appContext } : {}) }) });
  const page = await browser.follow(`${s.svc.url}/launch?${q}`);
  return { browser, page, appUrl: browser.hops.at(-1)!.url };
}

function form(body: string) {
  const v = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(body)?.[1];
  return { session: v('session')!, csrf: v('csrf')!, analysis: v('analysis')! };
}

async function post(appUrl: string, browser: CookieJarClient, fields: Record<string, string>) {
  const origin = new URL(appUrl).origin;
  const cookie = (browser.hops.flatMap((h) => h.setCookies).map((c) => c.split(';')[0]!)).join('; ');
  const res = await fetch(`${origin}/app/review`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: new URLSearchParams(fields).toString(), redirect: 'manual' });
  return { status: res.status, body: await res.text() };
}

/** Reads the sandbox FHIR server's store directly (the EHR-side clients hold no DiagnosticReport/Provenance search scope). */
async function search(path: string): Promise<any[]> {
  return (await s.svc.sandbox!.fhir.repo.searchResources(parseSearchRequest(path.replace(/^\//, '')))) as any[];
}

describe('Approve & file from the SMART app', () => {
  it('shows what will be written and where; files a final report with the edited conclusion once; refuses a foreign form', async () => {
    s.svc.sandbox!.fhir.ehrProfile = 'standard';
    const patientId = await fixturePatientId(s.svc, diabetic.mrn);
    await analysed(patientId);
    const { browser, page, appUrl } = await launch(patientId);
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<div class="test-model" role="alert">TEST MODEL WITH RANDOM WEIGHTS/);
    expect(page.body).toContain('Approve &amp; file');
    expect(page.body).toMatch(/data-plan="approve">Approve &amp; file writes to the EHR at http:\/\/127\.0\.0\.1:\d+: a final diagnostic report/);
    const f = form(page.body);

    // Without the session's CSRF token (a page elsewhere posting into the app): refused, nothing written.
    const forged = await post(appUrl, browser, { ...f, csrf: 'A'.repeat(43), action: 'approve', conclusion: 'forged' });
    expect(forged.status).toBe(403);
    expect(await search(`/DiagnosticReport?subject=Patient/${patientId}`)).toHaveLength(0);

    const ok = await post(appUrl, browser, { ...f, action: 'approve', conclusion: 'Moderate NPDR right eye, refer in 3 months.' });
    expect(ok.body.match(/data-ehr-reason>([^<]*)/)?.[1] ?? ok.status).toBe(200);
    expect(ok.body).toContain('Approved and filed');
    const reports = await search(`/DiagnosticReport?subject=Patient/${patientId}`);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ status: 'final', performer: [{ reference: CLINICIAN }], resultsInterpreter: [{ reference: CLINICIAN }] });
    // The random-weights model's banner stays in front of what the clinician typed.
    expect(reports[0].conclusion).toMatch(/^TEST MODEL WITH RANDOM WEIGHTS.*Moderate NPDR right eye, refer in 3 months\.$/);
    const provs = await search(`/Provenance?target=DiagnosticReport/${reports[0].id}`);
    expect(provs.some((p) => p.agent.some((a: any) => a.type.coding[0].code === 'verifier' && a.who.reference === CLINICIAN) && p.agent.some((a: any) => /^Device\//.test(a.who.reference)))).toBe(true);

    const again = await post(appUrl, browser, { ...f, action: 'approve', conclusion: 'something else' });
    expect(again.body).toContain('already filed; nothing was changed');
    expect(await search(`/DiagnosticReport?subject=Patient/${patientId}`)).toHaveLength(1);
    const reloaded = await browser.get(appUrl);
    expect(reloaded.body).toContain('data-review-state="filed"');
    expect(reloaded.body).not.toContain('Approve &amp; file</button>');
  });

  it('an EHR refusing the write: its reason is shown and nothing is marked filed', async () => {
    const amd = listFixturePatients().find((p) => p.key === 'amd')!;
    const patientId = await fixturePatientId(s.svc, amd.mrn);
    await analysed(patientId);
    const { browser, page, appUrl } = await launch(patientId);
    const f = form(page.body);
    s.svc.sandbox!.fhir.ehrProfile = 'oracle'; // the server now refuses what Oracle Health refuses; the service still writes fhir-standard
    try {
      const refused = await post(appUrl, browser, { ...f, action: 'approve', conclusion: 'No AMD.' });
      expect(refused.status).toBe(422);
      expect(refused.body).toContain('The EHR refused the write');
      expect(refused.body).toContain('Nothing was marked filed');
      expect(refused.body).toMatch(/<q data-ehr-reason>[^<]+<\/q>/);
    } finally {
      s.svc.sandbox!.fhir.ehrProfile = 'standard';
    }
    const reloaded = await browser.get(appUrl);
    expect(reloaded.body).toContain('data-review-state="open"');
    expect(s.logs.join('')).not.toContain('No AMD.');
  });

  it("a card's smart link opens the analysis its appContext names, and refuses it for another patient's launch", async () => {
    const glaucoma = listFixturePatients().find((p) => p.key === 'glaucoma')!;
    const patientId = await fixturePatientId(s.svc, glaucoma.mrn);
    const appContext = await analysed(patientId);
    const id = JSON.parse(appContext).analysis as string;
    const opened = await launch(patientId, appContext);
    expect(opened.page.status).toBe(200);
    expect(opened.page.body).toMatch(new RegExp(`<section class="draft" data-draft-id="${id}" data-from-card="true">`));
    expect(opened.page.body.indexOf(`data-draft-id="${id}"`)).toBe(opened.page.body.indexOf('data-draft-id='));

    const otherId = await fixturePatientId(s.svc, diabetic.mrn);
    const foreign = await launch(otherId, appContext);
    expect(foreign.page.status).toBe(403);
    expect(foreign.page.body).toContain('belongs to another patient');
    expect(foreign.page.body).not.toContain(id);

    const gone = await launch(patientId, JSON.stringify({ analysis: 'no-such-analysis' }));
    expect(gone.page.status).toBe(200);
    expect(gone.page.body).toContain('The draft named by the card is no longer available');
  });
});
