import { readFileSync } from 'node:fs';
import type { Bundle } from 'fhir/r4.js';
import type { ExamContext } from '../../src/findings/types.js';
import type { FhirSandbox } from '../../src/sandbox/fhir-server.js';
import { image } from '../findings/exam-fixtures.js';

/** Loads the diabetic fixture into the sandbox FHIR server; the exam context of its patient and encounter (images r1 right, l1 left). */
export async function diabeticOnServer(fhir: FhirSandbox, get: (path: string) => Promise<any>): Promise<ExamContext> {
  const bundle = JSON.parse(readFileSync(new URL('../../fixtures/fhir/patient-diabetic.json', import.meta.url), 'utf8')) as Bundle;
  await fhir.loadBundle(bundle as never);
  const patient = (await get('/Patient?_count=1')).entry[0].resource;
  const ref = `Patient/${patient.id}`;
  const encounter = (await get(`/Encounter?patient=${ref}`)).entry[0].resource;
  return { patient: ref, encounter: `Encounter/${encounter.id}`, effectiveDateTime: '2026-11-20T10:15:00Z', imagingStudies: [], notes: [], images: [image('r1', 'right'), image('l1', 'left')], profile: {} };
}
