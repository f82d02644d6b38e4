import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { extractDicomFrames, listFixturePatients } from '../../src/sandbox/fixtures.js';
import { dicomUids, findOrthanc, startOrthanc, type OrthancSandbox } from '../../src/sandbox/orthanc.js';

// Orthanc is part of the sandbox: a machine without it fails this file unless VOLMO_NO_PACS=1 says so.
const noPacs = process.env.VOLMO_NO_PACS === '1';
const fixtures = listFixturePatients();
const dicomOf = (key: string, i = 0) => fixtures.find((p) => p.key === key)!.dicom[i];

describe.skipIf(noPacs)('Orthanc sandbox (DICOMweb round trip)', () => {
  let open: OrthancSandbox;
  let secured: OrthancSandbox;

  beforeAll(async () => {
    expect(findOrthanc(), 'Orthanc + DICOMweb plugin not installed: apt-get install -y orthanc orthanc-dicomweb (or set VOLMO_NO_PACS=1)').not.toBeNull();
    [open, secured] = await Promise.all([
      startOrthanc({ log: silentLogger() }),
      startOrthanc({ log: silentLogger(), users: { pacs: 's3cret-pacs' } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([open?.stop(), secured?.stop()]);
  });

  it('listens on loopback and answers /system', async () => {
    expect(open.restUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(open.dicomWebUrl).toBe(`${open.restUrl}/dicom-web`);
    const sys = (await (await fetch(`${open.restUrl}/system`)).json()) as { Version: string; PluginsEnabled: boolean };
    expect(sys.PluginsEnabled).toBe(true);
  });

  it('STOW-RS upload, QIDO-RS search, WADO-RS rendered JPEG of a fixture fundus photograph', async () => {
    const d = dicomOf('diabetic');
    const uids = await open.uploadDicom(new Uint8Array(readFileSync(d.path)));
    expect(uids).toEqual({ studyUid: d.studyUid, seriesUid: d.seriesUid, sopUid: d.sopUid });

    const studies = (await (await fetch(`${open.dicomWebUrl}/studies?ModalitiesInStudy=OP&PatientID=${fixtures[0].mrn}`, { headers: { accept: 'application/dicom+json' } })).json()) as Record<string, { Value?: unknown[] }>[];
    expect(studies.map((s) => s['0020000D'.toLowerCase()]?.Value?.[0] ?? s['0020000D']?.Value?.[0])).toContain(d.studyUid);
    const series = (await (await fetch(`${open.dicomWebUrl}/studies/${d.studyUid}/series?Modality=OP`)).json()) as Record<string, { Value?: unknown[] }>[];
    expect(series.map((s) => s['0020000E']?.Value?.[0])).toContain(d.seriesUid);

    const res = await fetch(`${open.dicomWebUrl}/studies/${d.studyUid}/series/${d.seriesUid}/instances/${d.sopUid}/rendered`, { headers: { accept: 'image/jpeg' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/image\/jpeg/);
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', d.columns, d.rows]);
  });

  it('renders a chosen frame of the multi-frame OCT volume and refuses to render the corrupt image', async () => {
    const vol = dicomOf('amd', 1);
    expect(vol.frames).toBe(7);
    await open.uploadDicom(new Uint8Array(readFileSync(vol.path)));
    const frame = await fetch(`${open.dicomWebUrl}/studies/${vol.studyUid}/series/${vol.seriesUid}/instances/${vol.sopUid}/frames/4/rendered`, { headers: { accept: 'image/jpeg' } });
    expect(frame.status).toBe(200);
    expect((await sharp(Buffer.from(await frame.arrayBuffer())).metadata()).width).toBe(vol.columns);

    const bad = dicomOf('corrupt');
    await open.uploadDicom(new Uint8Array(readFileSync(bad.path)));
    const r = await fetch(`${open.dicomWebUrl}/studies/${bad.studyUid}/series/${bad.seriesUid}/instances/${bad.sopUid}/rendered`, { headers: { accept: 'image/jpeg' } });
    expect(r.ok).toBe(false);
    await r.body?.cancel();
  });

  it('returns the stored JPEG-baseline bytes unchanged with transfer-syntax=*', async () => {
    const d = dicomOf('glaucoma');
    const original = new Uint8Array(readFileSync(d.path));
    await open.uploadDicom(original);
    const res = await fetch(`${open.dicomWebUrl}/studies/${d.studyUid}/series/${d.seriesUid}/instances/${d.sopUid}`, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    expect(res.status).toBe(200);
    const boundary = /boundary="?([^";]+)"?/.exec(res.headers.get('content-type') ?? '')?.[1];
    expect(boundary).toBeTruthy();
    const body = Buffer.from(await res.arrayBuffer());
    const start = body.indexOf('\r\n\r\n') + 4;
    const part = body.subarray(start, body.indexOf(`\r\n--${boundary}`, start));
    const ds = dicomParser.parseDicom(new Uint8Array(part));
    expect(ds.string('x00020010')).toBe('1.2.840.10008.1.2.4.50');
    expect(ds.string('x00080018')).toBe(d.sopUid);
    // the encapsulated JPEG frame is the committed one, byte for byte
    expect(Buffer.from(extractDicomFrames(new Uint8Array(part))[0]).equals(Buffer.from(extractDicomFrames(original)[0]))).toBe(true);
  });

  it('with users, refuses anonymous requests and accepts the configured credentials', async () => {
    const anon = await fetch(`${secured.dicomWebUrl}/studies`);
    expect(anon.status).toBe(401);
    await anon.body?.cancel();
    expect(secured.authorization).toMatch(/^Basic /);
    const d = dicomOf('amd', 0);
    await secured.uploadDicom(new Uint8Array(readFileSync(d.path)));
    const res = await fetch(`${secured.dicomWebUrl}/studies/${d.studyUid}/series`, { headers: { authorization: secured.authorization! } });
    expect(res.status).toBe(200);
    const wrong = await fetch(`${secured.dicomWebUrl}/studies`, { headers: { authorization: `Basic ${Buffer.from('pacs:nope').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    await wrong.body?.cancel();
  });

  it('refuses to upload bytes that are not DICOM, before sending anything', async () => {
    await expect(open.uploadDicom(new Uint8Array(readFileSync(fixtures[0].imageFiles[0])))).rejects.toMatchObject({ code: 'bad_request' });
    expect(() => dicomUids(new Uint8Array([1, 2, 3]))).toThrow(/not a DICOM/);
  });

  it('refuses a port that is already taken', async () => {
    await expect(startOrthanc({ log: silentLogger(), port: open.port })).rejects.toMatchObject({ code: 'config_invalid', message: expect.stringMatching(/already in use/) });
  });

  it('fails clearly, with the output tail, when the Orthanc process exits at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volmo-fake-orthanc-'));
    const fake = join(dir, 'Orthanc');
    writeFileSync(fake, '#!/bin/sh\necho "E0000 fake orthanc: cannot open the index" >&2\nexit 3\n', { mode: 0o755 });
    await expect(startOrthanc({ log: silentLogger(), binary: fake, workDir: dir })).rejects.toMatchObject({
      code: 'upstream_error',
      message: expect.stringMatching(/exited before it was ready \(code 3\)[\s\S]*cannot open the index/),
    });
  });
});

describe.runIf(noPacs)('Orthanc sandbox skipped', () => {
  it('VOLMO_NO_PACS=1: the PACS tests are skipped on purpose', () => {
    expect(noPacs).toBe(true);
  });
});
