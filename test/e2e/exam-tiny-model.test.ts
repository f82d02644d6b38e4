/**
 * Hook to cards to draft report, end to end with the tiny random-weight model the project builds
 * itself: the service with its sandbox answers every fixture patient, labels every output as coming
 * from a TEST model, and every draft report bundle validates and is accepted by the sandbox FHIR server.
 */
import type { JSONWebKeySet } from 'jose';
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyseEvidence } from '../../src/analysis/analyse.js';
import { gatherEvidence } from '../../src/analysis/gather-evidence.js';
import { TEST_MODEL_LABEL } from '../../src/cds/cards.js';
import type { CdsCard } from '../../src/cds/types.js';
import { BackendServicesTokenSource } from '../../src/fhir/backend-services.js';
import { HttpFhirClient } from '../../src/fhir/http-client.js';
import { generateServiceKey, publicJwks } from '../../src/fhir/service-keys.js';
import { resolveFindingsConfig } from '../../src/findings/config.js';
import { silentLogger } from '../../src/log.js';
import type { SandboxedService } from '../../src/sandbox/service.js';
import { createEngine } from '../../src/model/runtime/engine.js';
import type { VlmEngine } from '../../src/model/runtime/types.js';
import { createGuardedFetch, type GuardedFetch } from '../../src/net/guarded-fetch.js';
import { validateReportBundle } from '../reports/validate.js';
import { ehrToken, fixturePatientId, type EhrToken } from '../../src/sandbox/ehr-access.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { loadSandboxSettings } from '../../src/sandbox/settings.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { READ_SCOPES, SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { buildTiny } from '../model/model-harness.js';
import { startSandboxedService } from '../helpers/service.js';

let modelDir: string;

beforeAll(async () => {
  modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-e2e-model-')) })).outDir;
}, 120_000);

const ehrTokenFor = (sb: Sandbox) => ehrToken(sb.fhirBaseUrl, sb.ehr);

async function patientIds(sb: Sandbox, token: string): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const p of listFixturePatients()) ids.set(p.key, await fixturePatientId(sb.fhirBaseUrl, token, p.mrn));
  return ids;
}

describe('CDS hook with the tiny test model', () => {
  let svc: SandboxedService;
  let token: EhrToken;
  let ids: Map<string, string>;
  beforeAll(async () => {
    svc = await startSandboxedService({ VOLMO_MODEL_DIR: modelDir, VOLMO_HOOK_WAIT_MS: '60000' }); // these cases want the findings on the first call
    token = await ehrTokenFor(svc.sandbox!);
    ids = await patientIds(svc.sandbox!, token.access_token);
  }, 120_000);
  afterAll(async () => svc?.close());

  const call = async (key: string) => {
    const sb = svc.sandbox!;
    const res = await sb.ehr.callHook({
      serviceUrl: `${svc.url}/cds-services/volmo-eye-exam-order-sign`,
      hook: 'order-sign',
      context: { userId: 'Practitioner/sandbox-practitioner', patientId: ids.get(key)!, draftOrders: draftOrders(eyeExamOrder(ids.get(key)!)) },
      fhirServer: sb.fhirBaseUrl,
      fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
    });
    expect(res.status).toBe(200);
    return (res.body as { cards: CdsCard[] }).cards;
  };

  it('readyz names the test model', async () => {
    const body = (await (await fetch(`${svc.url}/readyz`)).json()) as { checks: { name: string; ok: boolean; detail: string }[] };
    const model = body.checks.find((c) => c.name === 'model')!;
    expect(model.ok).toBe(true);
    expect(model.detail).toMatch(/TEST MODEL WITH RANDOM WEIGHTS/);
  });

  it.each(['diabetic', 'amd', 'glaucoma', 'idrid'])('%s: one card, plainly labelled as test-model output', async (key) => {
    const cards = await call(key);
    expect(cards).toHaveLength(1);
    const [card] = cards;
    expect(card!.summary.startsWith(TEST_MODEL_LABEL)).toBe(true);
    expect(card!.summary.length).toBeLessThan(140);
    expect(card!.indicator).toBe('info');
    expect(card!.detail).toMatch(/random weights/);
    expect(card!.detail).toMatch(/Right eye/);
    expect(card!.uuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('ungradable image: the card says the eye could not be graded', async () => {
    const [card] = await call('ungradable');
    expect(card!.detail).toMatch(/ungradable: the image is too dark/);
    expect(card!.detail).not.toMatch(/too_dark/); // plain words, never the internal code
    expect(card!.summary).toMatch(/review suggested|could not be assessed/);
  });

  it('no images: no card; images that could not be read: an info card that says so, never invented findings', async () => {
    expect(await call('no-images')).toEqual([]);
    const cards = await call('corrupt');
    expect(cards).toHaveLength(1);
    expect(cards[0]!.indicator).toBe('info');
    expect(cards[0]!.summary).toMatch(/^TEST MODEL.*: 1 eye image could not be assessed: the file is damaged or incomplete$/);
    expect(cards[0]!.detail).toMatch(/nothing has been concluded/);
    expect(`${cards[0]!.summary}${cards[0]!.detail}`).not.toMatch(/\b[a-z]+_[a-z_]+\b/); // no internal codes
  });
});

describe('a model slower than the hook may wait', () => {
  let svc: SandboxedService;
  let token: EhrToken;
  let ids: Map<string, string>;
  beforeAll(async () => {
    svc = await startSandboxedService({ VOLMO_MODEL_DIR: modelDir, VOLMO_HOOK_WAIT_MS: '0' });
    token = await ehrTokenFor(svc.sandbox!);
    ids = await patientIds(svc.sandbox!, token.access_token);
  }, 120_000);
  afterAll(async () => svc?.close());

  it('answers "in progress" without findings, then shows the finished analysis (same analysis id)', async () => {
    const sb = svc.sandbox!;
    const call = async () => {
      const res = await sb.ehr.callHook({
        serviceUrl: `${svc.url}/cds-services/volmo-eye-summary-patient-view`,
        hook: 'patient-view',
        context: { userId: 'Practitioner/sandbox-practitioner', patientId: ids.get('glaucoma')! },
        fhirServer: sb.fhirBaseUrl,
        fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
      });
      expect(res.status).toBe(200);
      return (res.body as { cards: CdsCard[] }).cards[0]!;
    };
    const first = await call();
    expect(first.summary).toMatch(/in progress/);
    expect(first.detail).toMatch(/No findings are available yet/);
    let later = first;
    for (let i = 0; i < 100 && /in progress/.test(later.summary); i++) {
      await new Promise((r) => setTimeout(r, 200));
      later = await call();
    }
    expect(later.summary).not.toMatch(/in progress/);
    expect(later.detail).toMatch(/Right eye/);
    expect(later.uuid).not.toBe(first.uuid); // a fresh uuid per card per response ...
    expect(later.extension?.['org.volmo-cds.analysis-id']).toBe(first.extension?.['org.volmo-cds.analysis-id']); // ... for the same analysis
  }, 60_000);
});

describe('draft reports with the tiny test model', () => {
  let sb: Sandbox;
  let engine: VlmEngine;
  let gf: GuardedFetch;
  let ids: Map<string, string>;
  let read: HttpFhirClient;
  let write: BackendServicesTokenSource;
  let tokenRequests = 0;
  beforeAll(async () => {
    const key = await generateServiceKey('ES384');
    const env = {
      VOLMO_SANDBOX_FHIR_PORT: '0', VOLMO_SANDBOX_AUTH_PORT: '0', VOLMO_SANDBOX_EHR_PORT: '0', VOLMO_SANDBOX_PACS_PORT: '0',
      VOLMO_SANDBOX_STATE_DIR: mkdtempSync(join(tmpdir(), 'volmo-rep-')),
    };
    sb = await startSandbox({ settings: loadSandboxSettings(env), publicUrl: 'http://127.0.0.1:8080', log: silentLogger(), backendJwks: publicJwks(key) as JSONWebKeySet });
    engine = await createEngine({ modelDir, log: silentLogger() });
    gf = createGuardedFetch({ allow: [sb.fhirBaseUrl, sb.authIssuer, ...(sb.dicomWebUrl ? [sb.dicomWebUrl] : [])] });
    const scope = [...READ_SCOPES.map((r) => `system/${r}.rs`), 'system/DiagnosticReport.cru', 'system/Observation.c', 'system/Provenance.c', 'system/Device.c', 'system/ServiceRequest.c', 'system/CarePlan.c'].join(' ');
    // Count what reaches the real token endpoint: the token must be obtained once and reused.
    const counting = Object.assign(
      (url: string | URL, init?: Parameters<GuardedFetch>[1]) => {
        if (String(url).startsWith(sb.authIssuer)) tokenRequests++;
        return gf(url, init);
      },
      { check: gf.check, allows: gf.allows, close: gf.close },
    ) as GuardedFetch;
    write = new BackendServicesTokenSource({ fetch: counting, fhirBaseUrl: sb.fhirBaseUrl, clientId: SANDBOX_CLIENT_IDS.backend, scope, key });
    read = new HttpFhirClient({ baseUrl: sb.fhirBaseUrl, fetch: gf, tokens: write });
    ids = await patientIds(sb, (await ehrTokenFor(sb)).access_token);
  }, 120_000);
  afterAll(async () => {
    await engine?.close();
    gf?.close();
    await sb?.stop();
  });

  it.each(listFixturePatients().map((p) => p.key))('%s: a valid transaction bundle that the FHIR server accepts', async (key) => {
    const evidence = await gatherEvidence({ patientId: ids.get(key)!, fhir: read }, { fetch: gf, pacs: sb.dicomWebUrl ? { baseUrl: sb.dicomWebUrl } : undefined });
    const result = await analyseEvidence({ engine, findings: resolveFindingsConfig({ assessPlanHistory: 'independent', tasks: { description: false, assessPlan: false } }) }, evidence, { patientId: ids.get(key)! });
    const { bundle, note } = result.report;
    expect(validateReportBundle(bundle)).toEqual([]);
    const types = bundle.entry!.map((e) => e.resource!.resourceType);
    expect(types).toEqual(expect.arrayContaining(['DiagnosticReport', 'Device', 'Provenance']));
    // Everything the model asserted carries the AIAST label (the Device and Provenance describe it instead).
    for (const e of bundle.entry!) if (['DiagnosticReport', 'Observation'].includes(e.resource!.resourceType)) expect(JSON.stringify(e.resource!.meta?.security ?? [])).toContain('AIAST');
    expect(note.text).toContain('TEST MODEL WITH RANDOM WEIGHTS');
    if (key === 'no-images' || key === 'corrupt') expect(result.timings.questions).toBe(0);
    if (key === 'ungradable') expect(note.text).toMatch(/Right eye: images? not gradable/);

    const accessToken = await write.getToken();
    const res = await fetch(sb.fhirBaseUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify(bundle),
    });
    const body = (await res.json()) as { resourceType: string; entry?: { response: { status: string } }[] };
    expect(res.status, JSON.stringify(body).slice(0, 500)).toBe(200);
    expect(body.entry!.every((e) => e.response.status.startsWith('201'))).toBe(true);
  });

  it('every task, with chained assessment-and-plan: steps 2-5 get the earlier questions and answers as history', async () => {
    const seen: { id: string; history?: { role: string; content: string }[] }[] = [];
    const spy: VlmEngine = { ...engine, info: engine.info, exam: async (input, o) => {
      seen.push(...input.questions.map((q) => ({ id: q.id, history: q.history })));
      return engine.exam(input, o);
    } };
    const evidence = await gatherEvidence({ patientId: ids.get('diabetic')!, fhir: read }, { fetch: gf, pacs: sb.dicomWebUrl ? { baseUrl: sb.dicomWebUrl } : undefined });
    const all = resolveFindingsConfig({ assessPlanHistory: 'chained' });
    const result = await analyseEvidence({ engine: spy, findings: all }, evidence, { patientId: ids.get('diabetic')! });
    expect(result.findings.assessPlan.map((s) => s.step)).toEqual([1, 2, 3, 4, 5]);
    expect(result.findings.descriptions).toHaveLength(2);
    const step3 = seen.find((q) => q.id === 'assess-plan:3')!;
    expect(step3.history?.map((t) => t.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(step3.history?.[0]?.content).toContain('<image>');
    expect(seen.find((q) => q.id === 'assess-plan:1')!.history).toBeUndefined();
    expect(validateReportBundle(result.report.bundle)).toEqual([]);
  }, 300_000);

  it('a single SMART Backend Services token (private_key_jwt, ES384) served every read and write above', () => {
    expect(tokenRequests).toBe(1);
  });
});
