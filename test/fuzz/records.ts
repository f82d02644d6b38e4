/** FHIR records to mutate (the p1 test patient and imaging resources) and hostile prefetch built from them. */
import fc from 'fast-check';
import { PATIENT_P1 } from '../evidence/helpers/patient-records.js';
import { hostileJson, mutated, nestBundles } from './arbitraries.js';

const subject = { reference: 'Patient/p1' };
const DCM = { system: 'http://dicom.nema.org/resources/ontology/DCM' };
const IMAGING: unknown[] = [
  { resourceType: 'Endpoint', id: 'pacs', status: 'active', address: 'https://pacs.example/dicom-web' },
  {
    resourceType: 'ImagingStudy', id: 's1', status: 'available', subject, started: '2026-04-10',
    identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:1.2.3' }], endpoint: [{ reference: 'Endpoint/pacs' }],
    contained: [{ resourceType: 'Endpoint', id: 'e', status: 'active', address: 'https://pacs.example/wado' }],
    series: [
      { uid: '1.2.3.1', modality: { ...DCM, code: 'OP' }, laterality: { code: '24028007' }, endpoint: [{ reference: '#e' }], instance: [{ uid: '1.2.3.1.1', sopClass: { code: '1.2.840.10008.5.1.4.1.1.77.1.5.1' } }] },
      { uid: '1.2.3.2', modality: { ...DCM, code: 'OPT' }, bodySite: { code: '8966001', display: 'Left eye' } },
    ],
  },
  { resourceType: 'Media', id: 'm1', status: 'completed', subject, modality: { coding: [{ ...DCM, code: 'OP' }], text: 'fundus' }, bodySite: { coding: [{ code: '362502000' }], text: 'Right eye' }, createdDateTime: '2026-04-10', content: { contentType: 'image/jpeg', url: 'Binary/f1', size: 1000 } },
  { resourceType: 'DocumentReference', id: 'd1', status: 'current', subject, description: 'OCT macula, left eye', category: [{ text: 'imaging' }], content: [{ attachment: { contentType: 'application/dicom', url: 'Binary/oct1' } }] },
  { resourceType: 'Binary', id: 'b1', contentType: 'image/png', data: 'iVBORw0KGgo=' },
];
const RECORDS: unknown[] = [...PATIENT_P1, ...IMAGING];
export const record = mutated(RECORDS);
/** A prefetch value: a searchset of mutated records (sometimes nested), one record, or junk. */
export const prefetchValue = fc.oneof(
  fc
    .tuple(fc.array(fc.oneof(record, hostileJson), { maxLength: 8 }), fc.nat(6))
    .map(([rs, depth]) => ({ resourceType: 'Bundle', type: 'searchset', entry: rs.map((r, i) => ({ resource: i === 0 ? nestBundles(r, depth) : r })) })),
  record,
  hostileJson,
);
export const KEYS = ['patient', 'conditions', 'observations', 'medications', 'medicationStatements', 'notes', 'imagingStudies', 'media'] as const;
export const prefetch = fc.dictionary(fc.constantFrom(...KEYS), prefetchValue, { maxKeys: KEYS.length });

