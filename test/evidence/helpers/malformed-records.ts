/** The malformed FHIR records of issue 14 finding 4, each reproduced as a 500 before the fix, for patient p1. */
import type { Resource } from 'fhir/r4.js';

export const subject = { reference: 'Patient/p1' };
export const JPEG = { contentType: 'image/jpeg', data: '/9j/4AAQ' };
const study = (series: unknown) => ({ resourceType: 'ImagingStudy', id: 's1', status: 'available', subject, identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:1.2.3' }], series: [series] });
export const deepBundle = (depth: number, inner: unknown) => {
  let b: unknown = inner;
  for (let i = 0; i < depth; i++) b = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: b }] };
  return b as Resource;
};

/** The probe's inputs, each as the resource an EHR would send. */
export const MALFORMED: Record<string, { key: 'media' | 'imagingStudies' | 'patient'; resource: unknown }> = {
  'Media.modality=true': { key: 'media', resource: { resourceType: 'Media', id: 'm1', status: 'completed', subject, modality: true, content: JPEG } },
  'bodySite.coding[0].code=5': { key: 'media', resource: { resourceType: 'Media', id: 'm1', status: 'completed', subject, bodySite: { coding: [{ code: 5 }] }, content: JPEG } },
  'coding:[null]': { key: 'media', resource: { resourceType: 'Media', id: 'm1', status: 'completed', subject, modality: { coding: [null] }, bodySite: { coding: [null, { code: '24028007' }] }, content: JPEG } },
  'series[0].instance:[null]': { key: 'imagingStudies', resource: study({ uid: '1.2.3.4', modality: { code: 'OP' }, instance: [null, { uid: '1.2.3.4.5' }] }) },
  'birthDate:{"toString":1}': { key: 'patient', resource: { resourceType: 'Patient', id: 'p1', gender: 'female', birthDate: { toString: 1 } } },
};

