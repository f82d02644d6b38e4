/**
 * The app shows the draft the hook path produced: a signed order-sign hook runs the tiny test model for a
 * fixture patient, then an EHR launch for that patient opens /app with the draft note and the TEST MODEL banner.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { READ_SCOPES, SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { buildTiny } from '../model/model-harness.js';
import { CookieJarClient, ehrBackendToken, fixturePatientId, startLaunchService, type CapturedService } from './smart-launch-flow.js';

let s: CapturedService;
const diabetic = listFixturePatients().find((p) => p.key === 'diabetic')!;
const amd = listFixturePatients().find((p) => p.key === 'amd')!;

beforeAll(async () => {
  const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-smart-model-')) })).outDir;
  s = await startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_HOOK_WAIT_MS: '60000' });
}, 120_000);
afterAll(async () => s?.svc.close());

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
      context: { userId: 'Practitioner/sandbox-practitioner', patientId, draftOrders: { resourceType: 'Bundle', type: 'collection', entry: [] } },
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
    expect(page.body).toContain('Draft pending clinician review; signing is not available yet');

    const other = await launchAndOpen(await fixturePatientId(s.svc, amd.mrn));
    expect(other.body).toContain(amd.name);
    expect(other.body).toContain('No AI analysis is available for this patient yet');
    expect(other.body).not.toContain('<pre>');
  });
});
