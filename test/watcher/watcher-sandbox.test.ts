/**
 * Analyses start when images arrive (issue 9 item 3): a new fundus study is stored into the sandbox's PACS
 * and recorded on its FHIR server — no hook call — and the image watcher analyses it; the first hook for
 * that patient then answers with findings from the stored analysis.
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxedService } from '../../src/sandbox/service.js';
import type { CdsCard } from '../../src/cds/types.js';
import { ehrToken, fixturePatientId, sandboxHookCall, type EhrToken } from '../../src/sandbox/ehr-access.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { wrapJpegAsDicom } from '../../scripts/fixtures/dicom-writer.js';
import { startSandboxedService } from '../helpers/service.js';
import { buildTiny } from '../model/model-harness.js';

const noImages = listFixturePatients().find((p) => p.key === 'no-images')!;
let svc: SandboxedService;
let token: EhrToken;
let patientId: string;

beforeAll(async () => {
  const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-watch-model-')) })).outDir;
  svc = await startSandboxedService({ VOLMO_MODEL_DIR: modelDir, VOLMO_WATCH_INTERVAL_MS: '500' });
  token = await ehrToken(svc.sandbox!.fhirBaseUrl, svc.sandbox!.ehr);
  patientId = await fixturePatientId(svc.sandbox!.fhirBaseUrl, token.access_token, noImages.mrn);
}, 180_000);
afterAll(async () => svc?.close());

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${svc.url}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name.replace(/[{}"=]/g, '\\$&')} (\\d+)`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
}

/** A new fundus study as a camera and the EHR would record it: DICOM into the PACS (if any), ImagingStudy on FHIR. */
async function storeNewStudy(): Promise<void> {
  const sb = svc.sandbox!;
  const jpeg = readFileSync('fixtures/images/diabetic-fundus-od.jpg');
  const { width, height } = await sharp(jpeg).metadata();
  const root = `2.25.${randomInt(1, 2 ** 47)}${randomInt(1, 2 ** 47)}`;
  const today = new Date().toISOString().slice(0, 10).replaceAll('-', '');
  const uids = { study: `${root}.1`, series: `${root}.1.1`, sop: `${root}.1.1.1` };
  if (sb.pacs) {
    const dicom = wrapJpegAsDicom({
      modality: 'OP', frames: [new Uint8Array(jpeg)], rows: height!, columns: width!, samplesPerPixel: 3, laterality: 'R',
      patient: { dicomName: 'Brooks^Samuel', id: noImages.mrn, birthDate: '19700615', sex: 'M' },
      study: { uid: uids.study, date: today, time: '101500', description: 'Fundus photography', accession: 'W1', id: 'W1' },
      series: { uid: uids.series, number: 1, description: 'Right eye' },
      sop: { uid: uids.sop, number: 1 },
    });
    await sb.pacs.uploadDicom(dicom);
  }
  const study = {
    resourceType: 'ImagingStudy',
    status: 'available',
    identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${uids.study}` }],
    subject: { reference: `Patient/${patientId}` },
    started: new Date().toISOString(),
    ...(sb.dicomWebUrl
      ? {
          contained: [{ resourceType: 'Endpoint', id: 'pacs', status: 'active', connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'dicom-wado-rs' }, payloadType: [{ text: 'DICOM' }], address: sb.dicomWebUrl }],
          endpoint: [{ reference: '#pacs' }],
        }
      : {}),
    series: [
      {
        uid: uids.series,
        modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'OP' },
        laterality: { system: 'http://snomed.info/sct', code: '24028007', display: 'Right' },
        instance: [{ uid: uids.sop, sopClass: { system: 'urn:ietf:rfc:3986', code: 'urn:oid:1.2.840.10008.5.1.4.1.1.77.1.5.1' } }],
      },
    ],
  };
  if (!sb.dicomWebUrl) throw new Error('this test needs the sandbox PACS (Orthanc)');
  await sb.fhir.loadBundle({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: study, request: { method: 'POST', url: 'ImagingStudy' } }] } as never);
}

describe('image watcher with the sandbox', () => {
  it.skipIf(process.env.VOLMO_NO_PACS === '1')('analyses a new study with no hook call; the first hook answers from the stored analysis', async () => {
    const hook = async () => {
      const call = await sandboxHookCall({ serviceBaseUrl: svc.url, fhirBaseUrl: svc.sandbox!.fhirBaseUrl, token, patientId, hook: 'patient-view', prefetch: true, withToken: true });
      const t0 = performance.now();
      const res = await svc.sandbox!.ehr.callHook(call);
      return { ms: performance.now() - t0, cards: (res.body as { cards: CdsCard[] }).cards };
    };
    expect((await hook()).cards).toEqual([]); // no images yet: no card
    await storeNewStudy();
    for (let i = 0; i < 240 && (await metric('volmo_watcher_patients_total{outcome="analysed"}')) < 1; i++) await new Promise((r) => setTimeout(r, 250));
    expect(await metric('volmo_watcher_patients_total{outcome="analysed"}')).toBe(1);
    // Both sources noticed it: the FHIR record and the PACS (QIDO-RS, PatientID -> FHIR identifier).
    expect(await metric('volmo_watcher_patients_seen_total{source="fhir-imaging"}')).toBeGreaterThanOrEqual(1);
    expect(await metric('volmo_watcher_patients_seen_total{source="dicomweb"}')).toBeGreaterThanOrEqual(1);
    const first = await hook();
    expect(first.cards).toHaveLength(1);
    expect(first.cards[0]!.summary).not.toMatch(/in progress/);
    expect(first.cards[0]!.detail).toMatch(/Right eye/);
    console.log(`first hook after the watcher's analysis: ${first.ms.toFixed(1)} ms (prefetch sent; no model run, no PACS request)`);
  }, 120_000);
});
