import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { selectImages } from '../../src/imaging/select.js';

const DCM = { system: 'http://dicom.nema.org/resources/ontology/DCM' };

describe('selectImages', () => {
  it('takes OP/OPT series of an ImagingStudy with laterality from codes and the endpoint from the study', () => {
    const refs = selectImages([
      { resourceType: 'Endpoint', id: 'pacs', status: 'active', address: 'https://pacs.example/dicom-web' },
      {
        resourceType: 'ImagingStudy',
        id: 's1',
        status: 'available',
        identifier: [{ system: 'urn:dicom:uid', value: 'urn:oid:1.2.3' }],
        endpoint: [{ reference: 'Endpoint/pacs' }],
        series: [
          { uid: '1.2.3.1', modality: { ...DCM, code: 'OP' }, laterality: { code: '24028007' }, instance: [{ uid: '1.2.3.1.1' }, { uid: '1.2.3.1.2' }] },
          { uid: '1.2.3.2', modality: { ...DCM, code: 'OPT' }, bodySite: { code: '8966001', display: 'Left eye structure' }, instance: [{ uid: '1.2.3.2.1' }] },
          { uid: '1.2.3.3', modality: { ...DCM, code: 'SR' }, instance: [{ uid: '1.2.3.3.1' }] },
          { uid: '1.2.3.4', modality: { ...DCM, code: 'OP' } },
          { uid: 'bad uid!', modality: { ...DCM, code: 'OP' }, instance: [{ uid: '../../etc' }] },
        ],
      },
    ]);
    expect(refs.map((r) => [r.eye, r.modality, r.source.kind === 'dicomweb' ? r.source.instance ?? `series:${r.source.series}` : '-'])).toEqual([
      ['right', 'OP', '1.2.3.1.1'],
      ['right', 'OP', '1.2.3.1.2'],
      ['left', 'OPT', '1.2.3.2.1'],
      ['unknown', 'OP', 'series:1.2.3.4'],
      ['unknown', 'OP', 'series:undefined'],
    ]);
    expect(refs[0]).toMatchObject({ fhirRef: 'ImagingStudy/s1', source: { study: '1.2.3', endpoint: 'https://pacs.example/dicom-web' } });
  });

  it('reads Media, DocumentReference and Binary attachments (url and inline), skipping non-images', () => {
    const refs = selectImages([
      { resourceType: 'Binary', id: 'b1', contentType: 'image/png', data: 'iVBORw0KGgo=' },
      { resourceType: 'DocumentReference', id: 'note', status: 'current', content: [{ attachment: { contentType: 'text/plain', data: 'aGk=' } }] },
      {
        resourceType: 'DocumentReference',
        id: 'd1',
        status: 'current',
        description: 'OCT macula, left eye',
        content: [{ attachment: { contentType: 'application/dicom', url: 'Binary/oct1' } }],
      },
      { resourceType: 'Media', id: 'gone', status: 'entered-in-error', content: { contentType: 'image/jpeg', url: 'Binary/x' } },
      {
        resourceType: 'Media',
        id: 'm1',
        status: 'completed',
        modality: { coding: [{ ...DCM, code: 'OP' }] },
        bodySite: { text: 'Right eye' },
        createdDateTime: '2025-01-02',
        content: { contentType: 'image/jpeg', url: 'https://ehr.example/Binary/f1' },
      },
    ]);
    expect(refs.map((r) => [r.fhirRef, r.eye, r.modality, r.source.kind === 'attachment' ? r.source.url ?? 'inline' : '-'])).toEqual([
      ['Media/m1', 'right', 'OP', 'https://ehr.example/Binary/f1'],
      ['DocumentReference/d1', 'left', 'OPT', 'Binary/oct1'],
      ['Binary/b1', 'unknown', undefined, 'inline'],
    ]);
  });

  const fixture = 'fixtures/fhir/patient-amd.json';
  it.skipIf(!existsSync(fixture))('selects the fixture AMD patient images through bundle fullUrl references', () => {
    const refs = selectImages([JSON.parse(readFileSync(fixture, 'utf8'))]);
    expect(refs.length).toBeGreaterThanOrEqual(3);
    expect(new Set(refs.map((r) => r.modality))).toEqual(new Set(['OP', 'OPT']));
    for (const r of refs) {
      expect(r.source.kind).toBe('dicomweb');
      expect(r.source).toMatchObject({ endpoint: 'urn:volmo:sandbox:dicomweb' });
      expect(['right', 'left']).toContain(r.eye);
    }
  });
});
