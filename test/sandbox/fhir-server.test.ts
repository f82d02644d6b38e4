import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, CapabilityStatement, Observation, OperationOutcome, Patient } from '@medplum/fhirtypes';
import { silentLogger } from '../../src/log.js';
import { startFhirServer, type FhirSandbox } from '../../src/sandbox/fhir-server.js';

const FHIR_JSON = 'application/fhir+json';
let fhir: FhirSandbox;

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${fhir.baseUrl}${path}`, {
    method,
    headers: { accept: FHIR_JSON, ...(body !== undefined ? { 'content-type': FHIR_JSON } : {}), ...headers },
    body: (body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body)) as BodyInit | undefined,
  });
  const text = await res.text();
  return { res, status: res.status, json: text ? (JSON.parse(text) as any) : undefined };
}

const patient = (family: string): Patient => ({ resourceType: 'Patient', name: [{ family, given: ['Test'] }], gender: 'female' });
const observation = (patientId: string, value: number): Observation => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c' }] },
  subject: { reference: `Patient/${patientId}` },
  valueQuantity: { value, unit: '%', system: 'http://unitsofmeasure.org', code: '%' },
});

beforeAll(async () => {
  fhir = await startFhirServer({ authIssuer: 'http://127.0.0.1:9/issuer', log: silentLogger(), requireAuth: false });
});
afterAll(async () => {
  await fhir?.close();
});

describe('sandbox FHIR server (no auth)', () => {
  it('serves a CapabilityStatement at /metadata with the SMART oauth-uris extension', async () => {
    const { status, res, json } = await call('GET', '/metadata');
    expect(status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const cs = json as CapabilityStatement;
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.fhirVersion).toBe('4.0.1');
    const obs = cs.rest?.[0]?.resource?.find((r) => r.type === 'Observation');
    expect(obs?.searchParam?.some((p) => p.name === 'patient')).toBe(true);
    const oauth = cs.rest?.[0]?.security?.extension?.find((e) => e.url.endsWith('/oauth-uris'));
    const uris = Object.fromEntries((oauth?.extension ?? []).map((e) => [e.url, e.valueUri]));
    expect(uris.authorize).toBe('http://127.0.0.1:9/issuer/authorize');
    expect(uris.token).toBe('http://127.0.0.1:9/issuer/token');
  });

  it('creates, reads, updates and deletes with proper statuses and headers', async () => {
    const created = await call('POST', '/Patient', patient('Create'));
    expect(created.status).toBe(201);
    expect(created.res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const id = created.json.id as string;
    expect(created.res.headers.get('location')).toContain(`/fhir/R4/Patient/${id}/_history/`);
    const read = await call('GET', `/Patient/${id}`);
    expect(read.status).toBe(200);
    expect(read.json.name[0].family).toBe('Create');
    expect(read.res.headers.get('etag')).toBe(`W/"${read.json.meta.versionId}"`);
    const updated = await call('PUT', `/Patient/${id}`, { ...read.json, gender: 'male' });
    expect(updated.status).toBe(200);
    expect(updated.json.gender).toBe('male');
    expect((await call('DELETE', `/Patient/${id}`)).status).toBe(200);
    const gone = await call('GET', `/Patient/${id}`);
    expect(gone.status).toBe(410);
    expect((gone.json as OperationOutcome).resourceType).toBe('OperationOutcome');
    const missing = await call('GET', '/Patient/does-not-exist');
    expect(missing.status).toBe(404);
    expect(missing.json.resourceType).toBe('OperationOutcome');
    expect((await call('GET', '/NotAType/1')).status).toBe(404);
  });

  it('rejects invalid resources with 400 and an OperationOutcome, and writes nothing', async () => {
    const noCode = { resourceType: 'Observation', status: 'final', subject: { reference: 'Patient/x' } };
    const r1 = await call('POST', '/Observation', noCode);
    expect(r1.status).toBe(400);
    expect(r1.json.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(r1.json.issue)).toContain('Observation.code');
    const r2 = await call('POST', '/Patient', { resourceType: 'Patient', favouriteColour: 'blue' });
    expect(r2.status).toBe(400);
    const r3 = await call('POST', '/Patient', '{not json');
    expect(r3.status).toBe(400);
    const r4 = await call('POST', '/Patient', JSON.stringify(patient('Plain')), { 'content-type': 'text/plain' });
    expect(r4.status).toBe(415);
    const r5 = await call('POST', '/Observation', patient('Mismatch'));
    expect(r5.status).toBe(400);
  });

  it('rolls back a transaction when one entry fails', async () => {
    const before = await call('GET', '/Patient?family=Rollback');
    expect(before.json.total).toBe(0);
    const tx: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:8a1f5c2e-1111-4c3b-9d7e-000000000001', resource: patient('Rollback'), request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Observation', status: 'final' } as Observation, request: { method: 'POST', url: 'Observation' } },
      ],
    };
    const failed = await call('POST', '', tx);
    expect(failed.status).toBe(400);
    expect(failed.json.resourceType).toBe('OperationOutcome');
    const after = await call('GET', '/Patient?family=Rollback');
    expect(after.json.total).toBe(0);

    // the same bundle with a valid second entry commits both, with the urn:uuid reference rewritten
    const ok: Bundle = {
      ...tx,
      entry: [tx.entry![0]!, { resource: observation('placeholder', 7.1), request: { method: 'POST', url: 'Observation' } }],
    };
    (ok.entry![1]!.resource as Observation).subject = { reference: 'urn:uuid:8a1f5c2e-1111-4c3b-9d7e-000000000001' };
    const committed = await call('POST', '', ok);
    expect(committed.status).toBe(200);
    expect(committed.json.type).toBe('transaction-response');
    const pid = (await call('GET', '/Patient?family=Rollback')).json.entry[0].resource.id;
    const obs = await call('GET', `/Observation?patient=Patient/${pid}`);
    expect(obs.json.total).toBe(1);

    // an update inside a failing transaction is undone too
    const tx2: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { ...patient('Renamed'), id: pid }, request: { method: 'PUT', url: `Patient/${pid}` } },
        { request: { method: 'DELETE', url: 'Patient/no-such-patient' } },
      ],
    };
    expect((await call('POST', '', tx2)).status).toBeGreaterThanOrEqual(400);
    expect((await call('GET', `/Patient/${pid}`)).json.name[0].family).toBe('Rollback');
  });

  it('pages search results with _count/_offset and next links', async () => {
    const pid = (await call('POST', '/Patient', patient('Paging'))).json.id as string;
    for (let i = 0; i < 5; i++) expect((await call('POST', '/Observation', observation(pid, 6 + i / 10))).status).toBe(201);
    const seen = new Set<string>();
    let url: string | undefined = `${fhir.baseUrl}/Observation?patient=Patient/${pid}&_count=2`;
    let pages = 0;
    while (url) {
      expect(url.startsWith(fhir.baseUrl)).toBe(true);
      const page = (await (await fetch(url, { headers: { accept: FHIR_JSON } })).json()) as Bundle;
      pages++;
      expect(page.total).toBe(5);
      expect(page.entry!.length).toBeLessThanOrEqual(2);
      for (const e of page.entry ?? []) {
        expect(e.fullUrl).toBe(`${fhir.baseUrl}/Observation/${e.resource!.id}`);
        seen.add(e.resource!.id!);
      }
      expect(page.link?.find((l) => l.relation === 'self')).toBeDefined();
      url = page.link?.find((l) => l.relation === 'next')?.url;
    }
    expect(pages).toBe(3);
    expect(seen.size).toBe(5);
    expect((await call('GET', `/Observation?patient=Patient/${pid}&_count=abc`)).status).toBe(400);
  });

  it('answers 400 for unknown search parameters and accepts modifiers and chains', async () => {
    const bad = await call('GET', '/Observation?patient=Patient/1&colour=blue');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('colour');
    expect((await call('GET', '/Observation?code:text=hemoglobin&_sort=-date')).status).toBe(200);
    expect((await call('GET', '/Observation?subject:Patient.family=Paging')).status).toBe(200);
  });

  it('stores raw Binary uploads and returns them raw for their own Accept type', async () => {
    const bytes = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4]);
    const created = await call('POST', '/Binary', bytes, { 'content-type': 'image/jpeg' });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    const raw = await fetch(`${fhir.baseUrl}/Binary/${id}`, { headers: { accept: 'image/jpeg' } });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toBe('image/jpeg');
    expect(new Uint8Array(await raw.arrayBuffer())).toEqual(bytes);
    const asJson = await call('GET', `/Binary/${id}`);
    expect(asJson.json.resourceType).toBe('Binary');
    expect(asJson.json.contentType).toBe('image/jpeg');
  });

  it('loads a collection bundle and refuses an invalid one as a whole', async () => {
    await fhir.loadBundle({
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ resource: { ...patient('Loaded'), id: 'loaded-1' } }],
    });
    expect((await call('GET', '/Patient/loaded-1')).status).toBe(200);
    await expect(
      fhir.loadBundle({
        resourceType: 'Bundle',
        type: 'collection',
        entry: [{ resource: { ...patient('Loaded2'), id: 'loaded-2' } }, { resource: { resourceType: 'Observation' } as Observation }],
      }),
    ).rejects.toThrow(/bundle rejected/);
    expect((await call('GET', '/Patient/loaded-2')).status).toBe(404);
  });
});

describe('sandbox FHIR server (auth required)', () => {
  it('answers 401 with WWW-Authenticate: Bearer when no token is sent', async () => {
    const secured = await startFhirServer({ authIssuer: 'http://127.0.0.1:9/issuer', log: silentLogger() });
    try {
      const res = await fetch(`${secured.baseUrl}/Patient`, { headers: { accept: FHIR_JSON } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
      expect(((await res.json()) as OperationOutcome).resourceType).toBe('OperationOutcome');
      const basic = await fetch(`${secured.baseUrl}/Patient`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
      expect(basic.status).toBe(401);
      expect(basic.headers.get('www-authenticate')).toContain('error="invalid_request"');
      // metadata stays public
      expect((await fetch(`${secured.baseUrl}/metadata`)).status).toBe(200);
    } finally {
      await secured.close();
    }
  });
});
