/**
 * Issue 14, finding 4: malformed FHIR from an EHR (prefetch or an allowlisted FHIR server) must never throw.
 * Each input below is one the hostile probe reproduced as a TypeError / stack overflow (500).
 */
import type { Resource } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { gatherEvidence } from '../../src/analysis/gather-evidence.js';
import { gatherClinicalContext } from '../../src/evidence/gather-context.js';
import { extractMeasurements } from '../../src/evidence/observation-extract.js';
import { resolveQuery } from '../../src/evidence/prefetch.js';
import { summariseEyeMedications } from '../../src/evidence/record-extract.js';
import { flattenResources, MAX_BUNDLE_NESTING, screenResource, screenResources } from '../../src/evidence/resource-shape.js';
import { MemoryFhirClient } from '../fhir/memory-client.js';
import { selectImages } from '../../src/imaging/select.js';
import type { HttpFetch } from '../../src/imaging/http.js';
import { deepBundle, JPEG, MALFORMED, subject } from './helpers/malformed-records.js';
import { NOW } from './helpers/patient-records.js';

const noFetch: HttpFetch = async () => {
  throw new Error('no network in this test');
};

describe('selectImages with malformed records (was: TypeError)', () => {
  it('skips only the malformed part of each record', () => {
    expect(selectImages([MALFORMED['Media.modality=true']!.resource]).map((r) => [r.fhirRef, r.modality])).toEqual([['Media/m1', undefined]]);
    expect(selectImages([MALFORMED['bodySite.coding[0].code=5']!.resource]).map((r) => r.eye)).toEqual(['unknown']);
    expect(selectImages([MALFORMED['coding:[null]']!.resource]).map((r) => r.eye)).toEqual(['right']);
    const refs = selectImages([MALFORMED['series[0].instance:[null]']!.resource]);
    expect(refs.map((r) => (r.source.kind === 'dicomweb' ? r.source.instance : '-'))).toEqual(['1.2.3.4.5']);
  });

  it('unpacks a Bundle nested 20,000 deep without recursion, up to the nesting bound', () => {
    const media = { resourceType: 'Media', id: 'deep', content: JPEG };
    expect(selectImages([deepBundle(20_000, media)])).toEqual([]);
    expect(selectImages([deepBundle(MAX_BUNDLE_NESTING, media)]).map((r) => r.fhirRef)).toEqual(['Media/deep']);
  });

  it('does not read prototype keys or non-string contained ids', () => {
    const refs = selectImages([
      { resourceType: 'Media', id: 'm', modality: { coding: [{ code: { toString: 1 } }], text: { toString: 1 } }, bodySite: { coding: 'x' }, content: { ...JPEG, size: '9' } },
      { resourceType: 'ImagingStudy', identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:1.2.3' }], contained: [null, 5], endpoint: [null], series: [{ uid: '1.2.3.4', modality: { code: 'OPT' }, endpoint: [{ reference: '#e' }], laterality: 'L' }] },
    ]);
    expect(refs.map((r) => [r.resourceType, r.eye, r.modality])).toEqual([['ImagingStudy', 'unknown', 'OPT'], ['Media', 'unknown', undefined]]);
  });
});

describe('screenResources: the boundary check', () => {
  it('leaves out the smallest malformed record and names its path, never its value', () => {
    const r = screenResources([MALFORMED['series[0].instance:[null]']!.resource, MALFORMED['birthDate:{"toString":1}']!.resource], 'prefetch:x');
    expect(r.resources.map((x) => x.resourceType)).toEqual(['ImagingStudy', 'Patient']);
    expect((r.resources[0] as unknown as { series: { instance: unknown[] }[] }).series[0]!.instance).toEqual([{ uid: '1.2.3.4.5' }]);
    expect('birthDate' in r.resources[1]!).toBe(false);
    expect(r.problems.map((p) => [p.kind, p.source, p.message])).toEqual([
      ['malformed_resource', 'prefetch:x', 'a ImagingStudy had malformed elements, left out: series[0].instance[0]'],
      ['malformed_resource', 'prefetch:x', 'a Patient had malformed elements, left out: birthDate'],
    ]);
  });

  it('skips a record whose status, subject or patient is malformed, and echoes no unknown resourceType', () => {
    expect(screenResource({ resourceType: 'Condition', status: 5 }).skipped).toBe('status');
    expect(screenResource({ resourceType: 'Condition', subject: { reference: ['Patient/p1'] } }).skipped).toBe('subject');
    expect(screenResource({ resourceType: 'Observation', code: { coding: 'x' }, status: null }).skipped).toBe('status');
    const r = screenResources([{ resourceType: 'Secret Name 1961', status: 1 }, 'junk', null], 's');
    expect(r.problems.map((p) => p.message)).toEqual(['a resource with a malformed status was skipped']);
  });

  it('does not change a well-formed resource and keeps prototype-named keys as plain data', () => {
    const good = { resourceType: 'Condition', id: 'c', code: { coding: [{ system: 'http://snomed.info/sct', code: '44054006' }] } };
    expect(screenResource(good)).toEqual({ resource: good, removed: [] });
    const hostile = JSON.parse('{"resourceType":"Condition","__proto__":{"status":"x"},"code":{"coding":[{"code":{"toString":1}}],"constructor":1}}');
    const out = screenResource(hostile).resource as unknown as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(out.code).toEqual({ coding: [], constructor: 1 });
  });

  it('counts what lies too deep', () => {
    const r = flattenResources([deepBundle(20_000, { resourceType: 'Media' }), { resourceType: 'Patient' }]);
    expect([r.list.map((x) => x.r.resourceType), r.tooDeep]).toEqual([['Patient'], 1]);
  });
});

describe('evidence gathering with malformed records (was: TypeError / RangeError)', () => {
  for (const [name, { key, resource }] of Object.entries(MALFORMED)) {
    it(`from prefetch: ${name}`, async () => {
      const prefetch = { patient: { resourceType: 'Patient', id: 'p1' }, [key]: key === 'patient' ? resource : { resourceType: 'Bundle', type: 'searchset', entry: [{ resource }] } };
      const b = await gatherEvidence({ patientId: 'p1', prefetch }, { fetch: noFetch });
      expect(b.problems.filter((p) => p.kind === 'malformed_resource').map((p) => p.source)).toEqual([`prefetch:${key}`]);
    });

    it(`from an allowlisted FHIR server: ${name}`, async () => {
      const records = key === 'patient' ? [resource] : [{ resourceType: 'Patient', id: 'p1' }, resource];
      const b = await gatherEvidence({ patientId: 'p1', fhir: new MemoryFhirClient(records as Resource[]) }, { fetch: noFetch });
      expect(b.problems.filter((p) => p.kind === 'malformed_resource').map((p) => p.source)).toEqual([key]);
    });
  }

  it('a malformed birthDate costs the age only: the rest of the Patient is used', async () => {
    const c = await gatherClinicalContext(undefined, { patientId: 'p1', now: NOW, prefetch: { patient: MALFORMED['birthDate:{"toString":1}']!.resource } });
    expect([c.patient.ageYears, c.patient.sex]).toEqual([undefined, 'female']);
    expect(c.problems.some((p) => p.source === 'patient' && p.severity === 'error')).toBe(false);
  });

  it('a prefetch Bundle nested 20,000 deep: left out with a problem', async () => {
    const b = await gatherEvidence({ patientId: 'p1', prefetch: { patient: { resourceType: 'Patient', id: 'p1' }, media: deepBundle(20_000, { resourceType: 'Media', subject, content: JPEG }) } }, { fetch: noFetch });
    expect(b.problems.filter((p) => p.kind === 'malformed_resource').map((p) => p.message)).toEqual([`1 Bundle(s) nested more than ${MAX_BUNDLE_NESTING} deep were left out`]);
  });

  it('a nested Bundle cannot smuggle another patient’s record past the patient check', async () => {
    const other = { resourceType: 'Media', id: 'x', subject: { reference: 'Patient/p2' }, content: JPEG };
    const r = await resolveQuery({ key: 'media', query: undefined, patientId: 'p1', prefetch: { media: deepBundle(2, other) } });
    expect([r.resources.length, r.problems.map((p) => p.message)]).toEqual([0, ['1 resource(s) about another patient were ignored']]);
  });
});

describe('codes named like Object.prototype keys are not terminology', () => {
  const SCT = 'http://snomed.info/sct';
  it('a dosage site coded "constructor" / "__proto__" gives no eye (was: a function as the eye)', () => {
    for (const code of ['constructor', '__proto__', 'toString']) {
      const meds = summariseEyeMedications([{ resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject, medicationCodeableConcept: { text: 'Timolol 0.5% ophthalmic' }, dosageInstruction: [{ site: { coding: [{ system: SCT, code }] } }] }]);
      expect(meds.map((m) => m.eye)).toEqual([undefined]);
    }
  });

  it('an Observation coded "constructor" is not read as a measurement', () => {
    const obs = (code: string, system: string) => ({ resourceType: 'Observation' as const, status: 'final' as const, code: { coding: [{ system, code }] }, bodySite: { coding: [{ system: SCT, code: 'constructor' }] }, valueQuantity: { value: 20, code: 'mm[Hg]' } });
    const r = extractMeasurements([obs('constructor', 'http://loinc.org'), obs('41633001', SCT)]);
    expect([r.measurements.iop, r.problems]).toEqual([{}, []]);
  });
});
