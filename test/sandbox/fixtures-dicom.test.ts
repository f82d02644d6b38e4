import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import dicomParser from 'dicom-parser';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { extractDicomFrames, fixturesDir, listFixturePatients } from '../../src/sandbox/fixtures.js';

const patients = listFixturePatients();
const all = patients.flatMap((p) => p.dicom.map((d) => ({ p, d })));

describe('fixture DICOM files', () => {
  it.each(all.map(({ p, d }) => [relative(fixturesDir(), d.path), p, d] as const))('%s parses with the expected header', (_f, p, d) => {
    const ds = dicomParser.parseDicom(new Uint8Array(readFileSync(d.path)));
    expect(ds.string('x00020010')).toBe('1.2.840.10008.1.2.4.50'); // JPEG Baseline
    expect(ds.string('x00080016')).toBe(d.sopClassUid);
    expect(ds.string('x00080060')).toBe(d.modality);
    expect(ds.string('x00200062')).toBe(d.eye);
    expect([ds.string('x0020000d'), ds.string('x0020000e'), ds.string('x00080018')]).toEqual([d.studyUid, d.seriesUid, d.sopUid]);
    expect(ds.string('x00100020')).toBe(p.mrn);
    const [given, family] = p.name.split(' ');
    expect(ds.string('x00100010')).toBe(`${family}^${given}`);
    expect([ds.uint16('x00280010'), ds.uint16('x00280011')]).toEqual([d.rows, d.columns]);
    expect(d.sopClassUid).toBe(d.modality === 'OP' ? '1.2.840.10008.5.1.4.1.1.77.1.5.1' : '1.2.840.10008.5.1.4.1.1.77.1.5.4');
  });

  it.each(all.map(({ d }) => [relative(fixturesDir(), d.path), d] as const))('%s frames decode as expected', async (_f, d) => {
    const frames = extractDicomFrames(new Uint8Array(readFileSync(d.path)));
    expect(frames).toHaveLength(d.frames);
    for (const f of frames) {
      if (d.expect === 'corrupt') {
        await expect(sharp(f).raw().toBuffer()).rejects.toThrow();
        continue;
      }
      const { info, data } = await sharp(f).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([d.columns, d.rows]);
      expect((await sharp(f).metadata()).channels).toBe(d.modality === 'OP' ? 3 : 1);
      const mean = data.reduce((a, v) => a + v, 0) / data.length;
      if (d.expect === 'ungradable') expect(mean).toBeLessThan(15);
      else expect(mean).toBeGreaterThan(25);
    }
  });

  it('keeps images modest: synthetic JPEGs under 300 KB, 1024x1024 fundus photographs', async () => {
    for (const p of patients) for (const img of p.images) {
      expect(statSync(img.path).size).toBeLessThan(300 * 1024);
      if (img.kind === 'fundus' && img.expect !== 'corrupt') expect((await sharp(img.path).metadata()).width).toBe(1024);
    }
  });

  it('rejects a file that is not DICOM with a typed error', () => {
    expect(() => extractDicomFrames(new Uint8Array(readFileSync(patients[0].imageFiles[0])))).toThrow(/not a readable DICOM/);
  });

  it('the generator is deterministic and reproduces the committed fixtures byte for byte', () => {
    const out = mkdtempSync(join(tmpdir(), 'volmo-gen-'));
    mkdirSync(join(out, 'dicom'));
    // the public IDRiD image may be absent (no shared data folder): the generator then keeps this copy
    cpSync(join(fixturesDir(), 'dicom', 'idrid-fundus-od.dcm'), join(out, 'dicom', 'idrid-fundus-od.dcm'));
    execFileSync(process.execPath, ['--import', 'tsx', 'scripts/generate-fixtures.ts', '--out', out], { stdio: 'pipe' });
    const files = ['images', 'dicom', 'fhir'].flatMap((d) => readdirSync(join(out, d)).map((f) => `${d}/${f}`)).concat('index.json');
    expect(files.length).toBeGreaterThan(20);
    for (const f of files) expect(readFileSync(join(out, f)).equals(readFileSync(join(fixturesDir(), f))), f).toBe(true);
  }, 120_000);
});
