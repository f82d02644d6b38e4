/**
 * The app shows the draft the hook path produced: a signed order-sign hook runs the tiny test model for a
 * fixture patient, then an EHR launch for that patient opens /app with the draft note and the TEST MODEL banner.
 */
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { READ_SCOPES, SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { startEhrSimulator, type EhrSimulator } from '../../src/sandbox/ehr-simulator.js';
import { buildTiny } from '../model/model-harness.js';
import { CookieJarClient, ehrBackendToken, fixturePatientId, startLaunchService, type CapturedService } from './smart-launch-flow.js';

let s: CapturedService;
/** A second CDS client the operator trusts, bound to no FHIR server (the default for a configured client). */
let other: EhrSimulator;
const diabetic = listFixturePatients().find((p) => p.key === 'diabetic')!;
const amd = listFixturePatients().find((p) => p.key === 'amd')!;

beforeAll(async () => {
  const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-smart-model-')) })).outDir;
  other = await startEhrSimulator({ alg: 'ES384', port: 0 });
  s = await startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_HOOK_WAIT_MS: '60000', VOLMO_CDS_CLIENTS: JSON.stringify([{ iss: other.iss, jku: [other.jku] }]) });
}, 120_000);
afterAll(async () => {
  await s?.svc.close();
  await other?.close();
});

const launchAndOpen = async (patientId: string) => {
  const sb = s.svc.sandbox!;
  const q = new URLSearchParams({ iss: sb.fhirBaseUrl, launch: sb.auth.createLaunch({ patient: patientId }) });
  return new CookieJarClient().follow(`${s.svc.url}/launch?${q}`);
};

describe('SMART app with an analysis', () => {
  it("shows the launched patient's latest draft under the TEST MODEL banner, and no other patient's", async () => {
    const sb = s.svc.sandbox!;
    const token = await ehrBackendToken(s.svc, READ_SCOPES.map((r) => `system/${r}.rs`).join(' '));
    const patientId = await fixturePatientId(s.svc, diabetic.mrn);
    const res = await sb.ehr.callHook({
      serviceUrl: `${s.svc.url}/cds-services/volmo-eye-exam-order-sign`,
      hook: 'order-sign',
      context: { userId: 'Practitioner/sandbox-practitioner', patientId, draftOrders: draftOrders(eyeExamOrder(patientId)) },
      fhirServer: sb.fhirBaseUrl,
      fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
    });
    expect(res.status).toBe(200);
    expect((res.body as { cards: { summary: string }[] }).cards[0]!.summary).not.toMatch(/in progress/);

    const page = await launchAndOpen(patientId);
    expect(page.status).toBe(200);
    expect(page.body).toContain(diabetic.name);
    expect(page.body).toMatch(/<div class="test-model" role="alert">TEST MODEL WITH RANDOM WEIGHTS/);
    const pre = /<pre>([\s\S]*?)<\/pre>/.exec(page.body);
    expect(pre?.[1]).toMatch(/Right eye/);
    // the measurements the rules used, from the diabetic fixture's record
    expect(page.body).toContain('<h4>Measurements on record</h4>');
    // each value with the date the record gives it (a <time> the page's script shows as a local date)
    const when = (d: string) => ` <span class="when">(<time datetime="${d}" data-date>${d}</time>)</span>`;
    expect(page.body).toContain(`<li>HbA1c: 8.4%${when('2025-02-20')}</li>`);
    expect(page.body).toContain(`<li>Blood pressure: 148/92 mmHg${when('2025-03-04')}</li>`);
    expect(page.body).toContain(`<li>Intraocular pressure: right 16 mmHg${when('2025-03-04')}, left 17 mmHg${when('2025-03-04')}</li>`);
    expect(page.body).toContain('AI draft pending your review: nothing is in the chart as final until you approve it.');
    // the order it was made for (carried through the analysis job on the embedded store), and its images
    expect(page.body).toContain('For the order: Fundus photography, both eyes');
    expect(page.body).toMatch(/<h3 id="images-[^"]+">Images used<\/h3>/);

    const other = await launchAndOpen(await fixturePatientId(s.svc, amd.mrn));
    expect(other.body).toContain(amd.name);
    expect(other.body).toContain('No AI analysis is available for this patient yet');
    expect(other.body).not.toContain('<pre>');
  });
});

describe('analyses belong to the EHR that asked (hostile probe, issue 14 finding 1)', () => {
  it("a client bound to no FHIR server cannot put a prefetch-only draft on the sandbox EHR's patient", async () => {
    const sb = s.svc.sandbox!;
    const patientId = await fixturePatientId(s.svc, amd.mrn);
    // Another person's fundus photograph, a made-up Patient with the real patient's id, and the sandbox FHIR base.
    const media = { resourceType: 'Media', id: 'm1', status: 'completed', bodySite: { text: 'right eye' }, content: { contentType: 'image/jpeg', data: readFileSync('fixtures/images/diabetic-fundus-od.jpg').toString('base64') } };
    const res = await other.callHook({
      serviceUrl: `${s.svc.url}/cds-services/volmo-eye-exam-order-sign`,
      hook: 'order-sign',
      context: { userId: 'Practitioner/x', patientId, draftOrders: draftOrders(eyeExamOrder(patientId)) },
      fhirServer: sb.fhirBaseUrl,
      prefetch: { patient: { resourceType: 'Patient', id: patientId, birthDate: '1950-01-01' }, media: { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: media }] } },
    });
    expect(res.status).toBe(200);
    // The analysis ran (the client is trusted) ...
    expect((res.body as { cards: { summary: string }[] }).cards[0]!.summary).not.toMatch(/in progress/);
    // ... but it is filed under that client only: the sandbox EHR's launch for the real patient never shows it.
    const page = await launchAndOpen(patientId);
    expect(page.body).toContain(amd.name);
    expect(page.body).toContain('No AI analysis is available for this patient yet');
    expect(page.body).not.toContain('<pre>');
  });
});
