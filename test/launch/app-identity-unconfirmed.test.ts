/**
 * When the EHR cannot confirm the chart's patient (the Patient read fails), the app shows no draft and says
 * why: a draft is never shown beside an unconfirmed identity. A real loopback FHIR server answers the read
 * with 500 (and, second case, 404); the analyses port holds a finished draft for that patient.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderAppPage } from '../../launch/app-page.js';
import type { AppSession } from '../../launch/launch-router.js';
import type { AnalysisResult } from '../../src/analysis/analyse.js';
import { silentLogger } from '../../src/log.js';
import { createGuardedFetch } from '../../src/net/guarded-fetch.js';
import { DIABETIC, MODEL, diabeticAnswers } from '../findings/exam-fixtures.js';
import { buildFor } from '../reports/report-fixtures.js';

let server: Server;
let base: string;
let patientStatus = 500;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url?.startsWith('/fhir/Patient/')) {
      res.writeHead(patientStatus, { 'content-type': 'application/fhir+json' });
      return res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] }));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
});
afterAll(async () => new Promise<void>((r) => server.close(() => r())));

const result = { report: buildFor(DIABETIC, diabeticAnswers, { model: MODEL }), model: MODEL, context: DIABETIC } as unknown as AnalysisResult;

async function render(): Promise<string> {
  const fetch = createGuardedFetch({ allow: [base], timeoutMs: 2_000, retry: { maxRetries: 0 } });
  const session: AppSession = {
    browserId: 'b', iss: base, accessToken: 't', tokenExpiresAt: Date.now() + 60_000, tokenEndpoint: `${base}/token`,
    endsAt: Date.now() + 3_600_000, patient: 'p1', needPatientBanner: true, scope: 'launch patient/Patient.rs',
  };
  try {
    return await renderAppPage({ session, fetch, log: silentLogger(), sessionId: 's1', analyses: { recentForSubject: async () => [{ id: 'a1', startedAt: Date.now(), result }] } });
  } finally {
    fetch.close();
  }
}

describe('the patient cannot be read from the EHR', () => {
  for (const status of [500, 404]) {
    it(`(HTTP ${status}): no draft is shown, and the page says why`, async () => {
      patientStatus = status;
      const html = await render();
      expect(html).toContain('The patient could not be read from the EHR.');
      expect(html).toContain('No draft is shown: the patient of this chart could not be confirmed with the EHR.');
      expect(html).not.toContain('<section class="draft"');
      expect(html).not.toContain('<pre>');
      expect(html).not.toContain('No AI analysis is available for this patient yet');
    });
  }
});
