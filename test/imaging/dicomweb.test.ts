import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { DicomWebClient, PacsError, parseWadoAddress } from '../../src/imaging/dicomweb-client.js';
import { adaptWebFetch } from '../../src/imaging/http.js';
import { gatherImages } from '../../src/imaging/gather.js';
import { selectImages } from '../../src/imaging/select.js';
import { startFakeDicomWeb, type FakeDicomWeb, type FakeInstance } from './fake-dicomweb.js';
import { encapsulated, imageModule, writeDicom } from './dicom-writer.js';

interface FixtureDicom { file: string; expect: string; studyUid: string; seriesUid: string; sopUid: string; modality: string; frames: number; eye: string }
interface FixturePatient { key: string; bundle: string; dicom?: FixtureDicom[] }
const index = JSON.parse(readFileSync('fixtures/index.json', 'utf8')) as { patients: FixturePatient[] };
const fetch = adaptWebFetch(globalThis.fetch, { timeoutMs: 5000 });

describe('parseWadoAddress (Endpoint.address conventions)', () => {
  it('splits a study URL and keeps a base URL', () => {
    expect(parseWadoAddress('https://pacs.example/wado/rs/')).toEqual({ baseUrl: 'https://pacs.example/wado/rs' });
    expect(parseWadoAddress('https://pacs.example/wado/rs/studies/urn:oid:1.2.3?x=1')).toEqual({ baseUrl: 'https://pacs.example/wado/rs', study: '1.2.3' });
    expect(parseWadoAddress('https://pacs.example/dicom-web/studies/1.2.3/series/1.2.3.4')).toEqual({ baseUrl: 'https://pacs.example/dicom-web', study: '1.2.3', series: '1.2.3.4' });
    expect(() => parseWadoAddress('https://pacs.example/studies/..%2F..')).toThrow(/invalid study UID/);
  });
});

describe('DicomWebClient against a local DICOMweb server', () => {
  let server: FakeDicomWeb;
  let idrid: Buffer;
  const ids = { study: '1.2.826.1', series: '1.2.826.1.1', instance: '1.2.826.1.1.1' };
  beforeAll(async () => {
    idrid = readFileSync('fixtures/dicom/idrid-fundus-od.dcm');
    server = await startFakeDicomWeb([{ ...ids, sop: ids.instance, modality: 'OP', part10: idrid, rendered: readFileSync('fixtures/images/amd-fundus-od.jpg') }], { basic: 'volmo:s3cret' });
  });
  afterAll(() => server.close());

  it('round-trips QIDO-RS, native Part 10 (multipart) and rendered JPEG with Basic auth', async () => {
    const c = new DicomWebClient({ baseUrl: `${server.url}/`, fetch, auth: { kind: 'basic', username: 'volmo', password: 's3cret' } });
    const rows = await c.searchInstances(ids.study, ids.series);
    expect(rows[0]['00080018'].Value).toEqual([ids.instance]);
    const part10 = await c.retrieveInstance(ids);
    expect(part10.equals(idrid)).toBe(true);
    const jpeg = await c.retrieveRendered(ids, { viewport: [512, 512] });
    expect((await sharp(jpeg).metadata()).format).toBe('jpeg');
    const accepts = server.requests.map((r) => r.accept);
    expect(accepts).toContain('multipart/related; type="application/dicom"; transfer-syntax=*');
    expect(accepts).toContain('image/jpeg');
    expect(server.requests.at(-1)?.url).toMatch(/\/rendered\?viewport=512,512$/);
    expect(await c.searchInstances('9.9.9')).toEqual([]); // 204
  });

  it('maps HTTP failures to typed PacsErrors without UIDs in the message, and validates UIDs before any request', async () => {
    const noAuth = new DicomWebClient({ baseUrl: server.url, fetch });
    const err = await noAuth.retrieveInstance(ids).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PacsError);
    expect(err).toMatchObject({ code: 'upstream_refused', upstreamStatus: 401 });
    expect((err as Error).message).not.toContain(ids.study);
    const bearer = new DicomWebClient({ baseUrl: server.url, fetch, auth: { kind: 'bearer', token: async () => 'tok-123' } });
    await expect(bearer.searchStudies()).rejects.toMatchObject({ code: 'upstream_refused' });
    expect(server.requests.at(-1)?.authorization).toBe('Bearer tok-123');
    const n = server.requests.length;
    await expect(noAuth.retrieveInstance({ ...ids, instance: '1.2/../../x' })).rejects.toMatchObject({ code: 'bad_request' });
    expect(server.requests.length).toBe(n);
  });
});

describe('gatherImages: fixture patients through a local DICOMweb server', () => {
  let server: FakeDicomWeb;
  beforeAll(async () => {
    const inst: FakeInstance[] = index.patients.flatMap((p) =>
      (p.dicom ?? []).map((d) => ({ study: d.studyUid, series: d.seriesUid, sop: d.sopUid, modality: d.modality, frames: d.frames, part10: readFileSync(`fixtures/${d.file}`) })),
    );
    // a JPEG 2000 object we cannot decode: gather falls back to the server-rendered JPEG
    const j2k = writeDicom({ transferSyntax: '1.2.840.10008.1.2.4.90', elements: imageModule({ modality: 'OP', rows: 1024, cols: 1024, spp: 3, laterality: 'L' }), trailer: encapsulated([Buffer.from([0xff, 0x4f, 0xff, 0x51, 0, 0])]) });
    inst.push({ study: '1.2.9', series: '1.2.9.1', sop: '1.2.9.1.1', modality: 'OP', part10: j2k, rendered: readFileSync('fixtures/images/glaucoma-fundus-os.jpg') });
    server = await startFakeDicomWeb(inst, { basic: 'volmo:pw' });
  });
  afterAll(() => server.close());
  const pacs = () => ({ baseUrl: server.url, auth: { kind: 'basic' as const, username: 'volmo', password: 'pw' } });

  for (const p of index.patients) {
    it(`patient ${p.key}: every image accounted for as expected`, async () => {
      const refs = selectImages([JSON.parse(readFileSync(`fixtures/${p.bundle}`, 'utf8'))]);
      const { images, problems } = await gatherImages(refs, { fetch, pacs: pacs() });
      const all = [...images.right, ...images.left, ...images.unknown];
      for (const d of p.dicom ?? []) {
        const got = all.find((i) => i.provenance.sopInstanceUid === d.sopUid);
        if (d.expect === 'corrupt') {
          expect(got).toBeUndefined();
          expect(problems).toContainEqual(expect.objectContaining({ kind: 'image_rejected', source: 'image:ImagingStudy', message: expect.stringMatching(/^corrupt:/) }));
          continue;
        }
        expect(got, d.file).toBeDefined();
        expect(got!.eye).toBe(d.eye === 'R' ? 'right' : 'left');
        expect(got!.modality).toBe(d.modality);
        expect(got!.provenance).toMatchObject({ via: 'wado-native', studyInstanceUid: d.studyUid, seriesInstanceUid: d.seriesUid, fhirRef: expect.stringMatching(/ImagingStudy|urn:uuid/) });
        if (d.frames > 1) expect(got!.provenance.frame).toBe(Math.floor((d.frames - 1) / 2) + 1);
        const status = d.modality === 'OP' ? d.expect : 'unchecked';
        expect(got!.gradability.status, d.file).toBe(status);
        expect(got!.bytes !== undefined).toBe(status !== 'ungradable');
        if (status === 'ungradable') expect(problems).toContainEqual(expect.objectContaining({ kind: 'image_ungradable' }));
      }
      if (!p.dicom?.length) expect(all).toEqual([]);
    });
  }

  it('expands a series without listed instances by QIDO, falls back to /rendered, dedupes and never sends PACS credentials elsewhere', async () => {
    const other = await startFakeDicomWeb([]);
    try {
      const refs = selectImages([
        { resourceType: 'ImagingStudy', id: 'a', status: 'available', identifier: [{ system: 'urn:dicom:uid', value: '1.2.9' }], series: [{ uid: '1.2.9.1', modality: { code: 'OP' }, laterality: { code: '7771000' } }] },
        { resourceType: 'ImagingStudy', id: 'b', status: 'available', identifier: [{ system: 'urn:dicom:uid', value: '1.2.9' }], contained: [{ resourceType: 'Endpoint', id: 'e', status: 'active', address: `${other.url}/studies/1.2.9` }], endpoint: [{ reference: '#e' }], series: [{ uid: '1.2.9.1', modality: { code: 'OP' }, instance: [{ uid: '1.2.9.1.1' }] }] },
        { resourceType: 'Media', id: 'm', status: 'completed', bodySite: { text: 'left eye' }, content: { contentType: 'image/jpeg', data: readFileSync('fixtures/images/glaucoma-fundus-os.jpg').toString('base64') } },
      ]);
      expect(refs).toHaveLength(3);
      const { images, problems } = await gatherImages(refs, { fetch, pacs: pacs() });
      expect(images.left).toHaveLength(1);
      expect(images.left[0].provenance.via).toBe('wado-rendered');
      expect(problems.map((x) => x.kind).sort()).toEqual(['image_duplicate', 'pacs_unreachable']);
      expect(other.requests.length).toBeGreaterThan(0);
      expect(other.requests.every((r) => r.authorization === undefined)).toBe(true);
      expect(JSON.stringify(problems)).not.toContain('1.2.9');
    } finally {
      await other.close();
    }
  });

  it('reports an unreachable PACS as a problem, not a crash', async () => {
    const refs = selectImages([JSON.parse(readFileSync('fixtures/fhir/patient-diabetic.json', 'utf8'))]);
    const { images, problems } = await gatherImages(refs, { fetch, pacs: { baseUrl: 'http://127.0.0.1:1/dicom-web' } });
    expect(images.right.length + images.left.length).toBe(0);
    expect(problems.length).toBe(2);
    expect(problems.every((x) => x.kind === 'pacs_unreachable' && x.source === 'pacs')).toBe(true);
  });
});
