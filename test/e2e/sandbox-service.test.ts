/**
 * The `npm start` path end to end: the service with its local EHR sandbox (real FHIR server, SMART
 * authorization server, Orthanc, fixtures, EHR simulator), called the way an EHR calls it.
 */
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxedService } from '../../src/sandbox/service.js';
import { compileAllowlist, matchAllowlist } from '../../src/net/allowlist.js';
import { ehrToken, fixturePatientId, type EhrToken } from '../../src/sandbox/ehr-access.js';
import { SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { startSandboxedService } from '../helpers/service.js';

let svc: SandboxedService;
let token: EhrToken;

beforeAll(async () => {
  svc = await startSandboxedService({ VOLMO_SANDBOX_MODEL: 'none' });
  token = await ehrToken(svc.sandbox!.fhirBaseUrl, svc.sandbox!.ehr);
});
afterAll(async () => svc?.close());

const patientId = (mrn: string) => fixturePatientId(svc.sandbox!.fhirBaseUrl, token.access_token, mrn);

describe('service with the local EHR sandbox', () => {
  it('answers discovery, and the sandbox servers answer their standard endpoints', async () => {
    const sb = svc.sandbox!;
    const disc = await fetch(`${svc.url}/cds-services`, { headers: { authorization: `Bearer ${await sb.ehr.signJwt(`${svc.url}/cds-services`)}` } });
    expect(disc.status).toBe(200);
    expect(((await disc.json()) as { services: unknown[] }).services.length).toBe(3);
    const meta = await fetch(`${sb.fhirBaseUrl}/metadata`);
    expect(((await meta.json()) as { resourceType: string }).resourceType).toBe('CapabilityStatement');
    const smart = await fetch(`${sb.authIssuer}/.well-known/smart-configuration`);
    expect(((await smart.json()) as { capabilities: string[] }).capabilities).toContain('launch-ehr');
    const studies = await fetch(`${sb.dicomWebUrl}/studies?ModalitiesInStudy=OP`, { headers: { accept: 'application/dicom+json' } });
    expect(studies.status).toBe(200);
    expect(((await studies.json()) as unknown[]).length).toBeGreaterThanOrEqual(4);
  });

  it("lets the service reach only the auth server's token and key-set endpoints, not its whole origin (issue 14 finding 7)", async () => {
    const sb = svc.sandbox!;
    const allow = compileAllowlist(sb.outboundAllowlist);
    const allowed = (path: string) => matchAllowlist(allow, new URL(`${sb.authIssuer}${path}`)) !== undefined;
    expect(allowed('/token')).toBe(true);
    expect(allowed('/jwks')).toBe(true);
    for (const p of ['/', '/auth', '/interaction/x', '/reg', '/token/../admin', '/tokenx']) expect(allowed(p)).toBe(false);
    const smart = (await (await fetch(`${sb.fhirBaseUrl}/.well-known/smart-configuration`)).json()) as { token_endpoint: string };
    expect(sb.outboundAllowlist).toContain(smart.token_endpoint);
  });

  it('rejects FHIR reads without a token', async () => {
    const res = await fetch(`${svc.sandbox!.fhirBaseUrl}/Patient`);
    expect(res.status).toBe(401);
  });

  it('loaded every fixture patient', async () => {
    const { listFixturePatients } = await import('../../src/sandbox/fixtures.js');
    const fixtures = listFixturePatients();
    expect(fixtures.length).toBeGreaterThanOrEqual(6);
    const ids = await Promise.all(fixtures.map((f) => patientId(f.mrn)));
    expect(new Set(ids).size).toBe(fixtures.length);
  });

  it.each([
    ['with prefetch and token', { prefetch: true, token: true }],
    ['without prefetch', { prefetch: false, token: true }],
    ['without a token', { prefetch: false, token: false }],
    // Without a model no evidence is gathered: these cases hold the request shapes (signed, parsed, validated), not the evidence path.
])('without a model, accepts a signed order-sign call %s and answers an honest empty card list', async (_n, o) => {
    const sb = svc.sandbox!;
    const pid = await patientId((await import('../../src/sandbox/fixtures.js')).listFixturePatients().find((p) => p.key === 'diabetic')!.mrn);
    const res = await sb.ehr.callHook({
      serviceUrl: `${svc.url}/cds-services/volmo-eye-exam-order-sign`,
      hook: 'order-sign',
      context: { userId: 'Practitioner/sandbox-practitioner', patientId: pid, draftOrders: draftOrders(eyeExamOrder(pid)) },
      fhirServer: o.token ? sb.fhirBaseUrl : undefined,
      fhirAuthorization: o.token ? { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend } : undefined,
      prefetch: o.prefetch ? { patient: { resourceType: 'Patient', id: pid } } : undefined,
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ cards: [] });
  });

  it('refuses an unsigned hook call', async () => {
    const res = await svc.sandbox!.ehr.callHook(
      { serviceUrl: `${svc.url}/cds-services/volmo-eye-exam-order-sign`, hook: 'order-sign', context: { userId: 'Practitioner/1', patientId: 'x', draftOrders: { resourceType: 'Bundle' } } },
      { unsigned: true },
    );
    expect(res.status).toBe(401);
  });

  it('is ready, and /readyz lists the sandbox servers', async () => {
    const res = await fetch(`${svc.url}/readyz`);
    const body = (await res.json()) as { checks: { name: string; ok: boolean }[] };
    expect(res.status).toBe(200);
    expect(body.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['sandbox-fhir', 'sandbox-auth', 'sandbox-pacs']));
  });
});
