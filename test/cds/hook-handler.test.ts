import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AnalysisCache } from '../../src/analysis/analysis-cache.js';
import { createHookHandler } from '../../src/cds/hook-handler.js';
import type { CdsRequest } from '../../src/cds/request-schema.js';
import { resolveFindingsConfig } from '../../src/findings/config.js';
import { silentLogger } from '../../src/log.js';
import type { VlmEngine } from '../../src/model/runtime/types.js';
import type { GuardedFetch } from '../../src/net/guarded-fetch.js';
import { CDS_SERVICES } from '../../cds-hooks/index.js';

function spyFetch() {
  const calls: string[] = [];
  const f = Object.assign(
    async (url: string | URL) => {
      calls.push(String(url));
      throw new Error('no network in this test');
    },
    { check: async () => {}, allows: () => true, close: () => {} },
  ) as unknown as GuardedFetch;
  return { f, calls };
}

const engine = { info: { name: 't', version: '1', random: true, manifestSha256: 'x', executionProvider: 'cpu', dtype: 'fp32' } } as unknown as VlmEngine;

const request = (fhirServer: string): CdsRequest => ({
  hook: 'patient-view',
  hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
  fhirServer,
  fhirAuthorization: { access_token: 'secret-token', token_type: 'Bearer', expires_in: 300, scope: 'patient/*.rs', subject: 'volmo', patient: 'p1' },
  context: { userId: 'Practitioner/1', patientId: 'p1' },
  prefetch: { patient: { resourceType: 'Patient', id: 'p1', birthDate: '1960-01-01' } },
});

describe('hook handler FHIR server checks', () => {
  it('never sends a request (or the token) to a fhirServer this EHR may not name', async () => {
    const { f, calls } = spyFetch();
    const seen: [string, string | undefined][] = [];
    const handler = createHookHandler({
      log: silentLogger(),
      publicUrl: 'https://cds.example.org',
      fetch: f,
      isFhirServerAllowed: (url, iss) => {
        seen.push([url, iss]);
        return false;
      },
      engine: () => engine,
      findings: resolveFindingsConfig(),
      analyses: new AnalysisCache({ ttlMs: 1000, maxEntries: 10 }),
      waitMs: 0,
    });
    const res = await handler(request('https://pacs.example.org/dicom-web'), CDS_SERVICES[2]!, { signal: new AbortController().signal, iss: 'https://ehr.example.org' });
    expect(seen).toEqual([['https://pacs.example.org/dicom-web', 'https://ehr.example.org']]);
    expect(calls).toEqual([]);
    expect(res).toEqual({ cards: [] }); // prefetch has no images: nothing to analyse
  });

  it('answers an info card (no 5xx) when listing the evidence outlives the hook deadline', async () => {
    const { f } = spyFetch();
    const handler = createHookHandler({
      log: silentLogger(),
      publicUrl: 'https://cds.example.org',
      fetch: f,
      isFhirServerAllowed: () => true,
      engine: () => engine,
      findings: resolveFindingsConfig(),
      analyses: new AnalysisCache({ ttlMs: 1000, maxEntries: 10 }),
      waitMs: 0,
    });
    const res = await handler(request('https://ehr.example.org/fhir'), CDS_SERVICES[2]!, { signal: AbortSignal.abort(), iss: 'x' });
    expect(res.cards).toHaveLength(1);
    expect(res.cards[0]!.summary).toMatch(/AI review not available: the patient.s records could not be read in time$/);
    expect(res.cards[0]!.indicator).toBe('info');
  });

});

describe('hooks never wait for inference (issue 9 item 2)', () => {
  const image = readFileSync('fixtures/images/diabetic-fundus-od.jpg').toString('base64');
  const withImage: CdsRequest = {
    hook: 'patient-view',
    hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
    context: { userId: 'Practitioner/1', patientId: 'p1' },
    prefetch: {
      patient: { resourceType: 'Patient', id: 'p1', birthDate: '1960-01-01' },
      media: { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Media', id: 'm', status: 'completed', bodySite: { text: 'right eye' }, content: { contentType: 'image/jpeg', data: image } } }] },
    },
  };
  const handlerWith = (pendingOutcome: 'card' | 'none' | undefined, exams: { n: number }) =>
    createHookHandler({
      log: silentLogger(),
      publicUrl: 'https://cds.example.org',
      fetch: spyFetch().f,
      isFhirServerAllowed: () => false,
      // A model that never finishes: the hook must answer anyway, at once.
      engine: () => ({ ...engine, exam: () => (exams.n++, new Promise(() => {})) }) as unknown as VlmEngine,
      findings: resolveFindingsConfig(),
      analyses: new AnalysisCache({ ttlMs: 60_000, maxEntries: 10 }),
      waitMs: 0,
      pendingOutcome,
    });

  it('answers "in progress" without waiting, and starts one analysis for many hooks', async () => {
    const exams = { n: 0 };
    const handler = handlerWith(undefined, exams);
    const service = CDS_SERVICES.find((s) => s.hook === 'patient-view')!;
    const call = async () => (await handler(withImage, service, { signal: new AbortController().signal, iss: 'x' })).cards[0]!.summary;
    expect(await call()).toMatch(/in progress/);
    for (let i = 0; i < 100 && exams.n === 0; i++) await new Promise((r) => setTimeout(r, 50)); // pixels fetched in the background, then the exam
    for (let i = 0; i < 3; i++) expect(await call()).toMatch(/in progress/);
    expect(exams.n).toBe(1);
  });

  it('answers no card while pending when configured so', async () => {
    const res = await handlerWith('none', { n: 0 })(withImage, CDS_SERVICES.find((s) => s.hook === 'patient-view')!, { signal: new AbortController().signal, iss: 'x' });
    expect(res).toEqual({ cards: [] });
  });
});
