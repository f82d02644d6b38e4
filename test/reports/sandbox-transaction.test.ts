/**
 * The sandbox FHIR server (src/sandbox, @medplum/fhir-router with validation) accepts the draft report
 * bundle as one transaction, for fixture patients loaded into it. Model answers are hand-written here;
 * the end-to-end run with the tiny model belongs to the pipeline tests.
 */
import { readFileSync } from 'node:fs';
import type { Bundle } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExamContext } from '../../src/findings/types.js';
import { silentLogger } from '../../src/log.js';
import { startFhirServer, type FhirSandbox } from '../../src/sandbox/fhir-server.js';
import { RANDOM_MODEL, answersFor, diabeticAnswers, image } from '../findings/exam-fixtures.js';
import { buildFor } from './report-fixtures.js';

let fhir: FhirSandbox;
const JSON_FHIR = 'application/fhir+json';

async function get(path: string): Promise<any> {
  const res = await fetch(`${fhir.baseUrl}${path}`, { headers: { accept: JSON_FHIR } });
  return res.json();
}

async function loadPatient(file: string): Promise<ExamContext> {
  const bundle = JSON.parse(readFileSync(new URL(`../../fixtures/fhir/${file}`, import.meta.url), 'utf8')) as Bundle;
  const mrn = (bundle.entry?.find((e) => e.resource?.resourceType === 'Patient')?.resource as any).identifier[0].value as string;
  await fhir.loadBundle(bundle as never);
  const patient = (await get(`/Patient?identifier=${encodeURIComponent(mrn)}`)).entry[0].resource;
  const ref = `Patient/${patient.id}`;
  const first = async (type: string) => (await get(`/${type}?patient=${ref}`)).entry?.map((e: any) => `${type}/${e.resource.id}`) ?? [];
  const [encounter] = await first('Encounter');
  return {
    patient: ref, encounter, effectiveDateTime: '2026-11-20T10:15:00Z',
    imagingStudies: await first('ImagingStudy'), notes: await first('DocumentReference'),
    images: [image('r1', 'right'), image('l1', 'left')], profile: {},
  };
}

async function postTransaction(bundle: Bundle) {
  const res = await fetch(fhir.baseUrl, {
    method: 'POST', headers: { accept: JSON_FHIR, 'content-type': JSON_FHIR }, body: JSON.stringify(bundle),
  });
  return { status: res.status, json: (await res.json()) as any };
}

beforeAll(async () => {
  fhir = await startFhirServer({ authIssuer: 'http://127.0.0.1:9/issuer', log: silentLogger(), requireAuth: false });
});
afterAll(async () => {
  await fhir?.close();
});

describe('sandbox FHIR server accepts the draft report transaction', () => {
  it('diabetic fixture patient: DiagnosticReport + Observations + Device + Provenance, AIAST kept', async () => {
    const ctx = await loadPatient('patient-diabetic.json');
    expect(ctx.imagingStudies).toHaveLength(1);
    const out = buildFor(ctx, diabeticAnswers);
    const { status, json } = await postTransaction(out.bundle);
    expect(status).toBe(200);
    expect(json.entry.map((e: any) => e.response.status.slice(0, 3))).toEqual(out.bundle.entry!.map(() => '201'));
    const reports = await get(`/DiagnosticReport?subject=${ctx.patient}`);
    expect(reports.entry).toHaveLength(1);
    const dr = reports.entry[0].resource;
    expect(dr.status).toBe('preliminary');
    expect(dr.meta.security).toContainEqual(expect.objectContaining({ code: 'AIAST' }));
    expect(dr.result).toHaveLength(out.fullUrls.observations.length);
    expect(dr.result[0].reference).toMatch(/^Observation\/[A-Za-z0-9-]+$/);
    const prov = (await get(`/Provenance?target=DiagnosticReport/${dr.id}`)).entry[0].resource;
    expect(prov.agent[0].who.reference).toMatch(/^Device\//);
    // The plan as proposals: a draft referral whose reasons resolve to the stored findings, and a draft CarePlan.
    const sr = (await get(`/ServiceRequest?subject=${ctx.patient}`)).entry[0].resource;
    expect([sr.status, sr.intent, sr.priority]).toEqual(['draft', 'proposal', 'urgent']);
    expect(sr.reasonReference.every((r: any) => /^Observation\/[A-Za-z0-9-]+$/.test(r.reference))).toBe(true);
    const cp = (await get(`/CarePlan?subject=${ctx.patient}`)).entry[0].resource;
    expect([cp.status, cp.intent]).toEqual(['draft', 'proposal']);
    expect(cp.activity[0].reference.reference).toBe(`ServiceRequest/${sr.id}`);
  });

  it('ungradable fixture patient with a random-weights model', async () => {
    const ctx = await loadPatient('patient-ungradable.json');
    const withUngradable = { ...ctx, images: [image('r1', 'right'), image('l1', 'left', 'OP', false, 'too dark')] };
    const out = buildFor(withUngradable, (p) => answersFor(p), { model: RANDOM_MODEL });
    const { status } = await postTransaction(out.bundle);
    expect(status).toBe(200);
    const dr = (await get(`/DiagnosticReport?subject=${ctx.patient}`)).entry[0].resource;
    expect(dr.conclusion).toMatch(/^TEST MODEL WITH RANDOM WEIGHTS/);
    expect(dr.meta.tag.map((t: any) => t.code)).toContain('HTEST');
  });

  it('no-image fixture patient: a report without results, referral undetermined', async () => {
    const ctx = await loadPatient('patient-no-images.json');
    const out = buildFor({ ...ctx, images: [] }, (p) => answersFor(p));
    expect((await postTransaction(out.bundle)).status).toBe(200);
    const dr = (await get(`/DiagnosticReport?subject=${ctx.patient}`)).entry[0].resource;
    expect(dr.result).toBeUndefined();
    expect(dr.conclusion).toContain('Referral urgency: undetermined.');
  });
});
