/**
 * DICOMweb round trip against a REAL Orthanc (Debian orthanc + orthanc-dicomweb), started by the sandbox's
 * startOrthanc. Skipped where Orthanc or the launcher is not available.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import sharp from 'sharp';
import { silentLogger } from '../../src/log.js';
import { DicomWebClient, jsonString } from '../../src/imaging/dicomweb-client.js';
import { decodeDicom } from '../../src/imaging/dicom-decode.js';
import { adaptWebFetch } from '../../src/imaging/http.js';
import { gatherImages } from '../../src/imaging/gather.js';
import { selectImages } from '../../src/imaging/select.js';

const launcher = 'src/sandbox/orthanc.ts';
const available = existsSync(launcher) && existsSync('/usr/sbin/Orthanc');
const fetch = adaptWebFetch(globalThis.fetch, { timeoutMs: 15_000 });

interface Sandbox { dicomWebUrl: string; uploadDicom(b: Uint8Array): Promise<{ studyUid: string; seriesUid: string; sopUid: string }>; stop(): Promise<void> }

describe.skipIf(!available)('DICOMweb against a real Orthanc', () => {
  let orthanc: Sandbox;
  let client: DicomWebClient;
  const files = ['idrid-fundus-od.dcm', 'amd-fundus-od.dcm', 'amd-oct-volume-od.dcm', 'amd-oct-bscan-os.dcm'];
  const uids = new Map<string, { studyUid: string; seriesUid: string; sopUid: string }>();
  const auth = { kind: 'basic' as const, username: 'volmo', password: 'pacs-pw' };

  beforeAll(async () => {
    const mod = (await import(`../../${launcher.replace(/\.ts$/, '.js')}`)) as { startOrthanc(o: unknown): Promise<Sandbox> };
    orthanc = await mod.startOrthanc({ log: silentLogger(), users: { volmo: 'pacs-pw' } });
    for (const f of files) uids.set(f, await orthanc.uploadDicom(readFileSync(`fixtures/dicom/${f}`)));
    client = new DicomWebClient({ baseUrl: orthanc.dicomWebUrl, fetch, auth });
  });
  afterAll(async () => {
    await orthanc?.stop();
  });

  const ids = (f: string) => {
    const u = uids.get(f)!;
    return { study: u.studyUid, series: u.seriesUid, instance: u.sopUid };
  };

  it('QIDO-RS finds the uploaded studies and instances', async () => {
    const studies = await client.searchStudies({ ModalitiesInStudy: 'OP' });
    const found = studies.map((s) => jsonString(s, '0020000D'));
    expect(found).toContain(uids.get('idrid-fundus-od.dcm')!.studyUid);
    const inst = await client.searchInstances(ids('amd-oct-volume-od.dcm').study, ids('amd-oct-volume-od.dcm').series);
    expect(inst.map((r) => jsonString(r, '00080018'))).toContain(ids('amd-oct-volume-od.dcm').instance);
  });

  it('WADO-RS native (transfer-syntax=*) returns the stored JPEG baseline object unchanged', async () => {
    const bytes = await client.retrieveInstance(ids('idrid-fundus-od.dcm'));
    const d = decodeDicom(bytes);
    expect(d.transferSyntaxUid).toBe('1.2.840.10008.1.2.4.50');
    const stored = decodeDicom(readFileSync('fixtures/dicom/idrid-fundus-od.dcm'));
    expect(Buffer.from((d.frame as { bytes: Uint8Array }).bytes).equals(Buffer.from((stored.frame as { bytes: Uint8Array }).bytes))).toBe(true);
  });

  it('WADO-RS rendered JPEG of an instance and of one OCT frame', async () => {
    const jpeg = await client.retrieveRendered(ids('amd-fundus-od.dcm'));
    expect(await sharp(jpeg).metadata()).toMatchObject({ format: 'jpeg', width: 1024, height: 1024 });
    const frame = await client.retrieveRendered(ids('amd-oct-volume-od.dcm'), { frame: 4 });
    expect(await sharp(frame).metadata()).toMatchObject({ format: 'jpeg', width: 512, height: 496 });
  });

  it('WADO-RS frames returns frame parts', async () => {
    const parts = await client.retrieveFrames(ids('amd-oct-volume-od.dcm'), [4]);
    expect(parts).toHaveLength(1);
    expect(parts[0].body.length).toBeGreaterThan(1000);
  });

  it('gathers the AMD fixture patient end to end, and reports wrong credentials as a PACS problem', async () => {
    const refs = selectImages([JSON.parse(readFileSync('fixtures/fhir/patient-amd.json', 'utf8'))]);
    const ok = await gatherImages(refs, { fetch, pacs: { baseUrl: orthanc.dicomWebUrl, auth } });
    expect(ok.problems).toEqual([]);
    expect(ok.images.right.map((i) => i.modality).sort()).toEqual(['OP', 'OPT']);
    expect(ok.images.left.map((i) => i.modality)).toEqual(['OPT']);
    expect(ok.images.right.find((i) => i.modality === 'OPT')!.provenance.frame).toBe(4);
    const bad = await gatherImages(refs, { fetch, pacs: { baseUrl: orthanc.dicomWebUrl, auth: { ...auth, password: 'wrong' } } });
    expect(bad.problems.map((p) => [p.kind, p.code])).toEqual(refs.map(() => ['pacs_unreachable', 'upstream_refused']));
    expect(JSON.stringify(bad.problems)).not.toContain('wrong');
  });
});
