/**
 * Regenerates everything under fixtures/ (images, DICOM files, FHIR bundles, index.json) from the
 * patient specifications in scripts/fixtures/patients.ts. Deterministic: seeded drawing and UIDs, fixed
 * dates, so a second run rewrites identical bytes.
 *
 *   node --import tsx scripts/generate-fixtures.ts [--out <dir>] [--shared-data <dir>]
 *
 * The public IDRiD photograph is read from the shared data folder (default ../shared/data next to the
 * repository); when it is missing, the committed DICOM file is kept as it is.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { buildBundle, type GeneratedInstance } from './fixtures/bundle.js';
import { wrapJpegAsDicom, SOP_CLASS } from './fixtures/dicom-writer.js';
import { drawFundusJpeg, truncateJpeg } from './fixtures/draw-fundus.js';
import { drawOctJpeg } from './fixtures/draw-oct.js';
import { PATIENTS, type ImageSpec, type PatientSpec } from './fixtures/patients.js';
import { seededDicomUid } from './fixtures/seeded.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? resolve(process.argv[i + 1]) : fallback;
}

const IDRID_ATTRIBUTION =
  'IDRiD_01 from the Indian Diabetic Retinopathy Image Dataset (Porwal et al., Data 2018;3(3):25), CC BY 4.0; ' +
  'copy from github.com/Deeplayer/Idrid (cropped, green optic-disc contour drawn). Wrapped without recompression.';

interface Frames { frames: Buffer[]; rows: number; columns: number; samples: 1 | 3; preview?: Buffer }

async function makeFrames(p: PatientSpec, img: ImageSpec, sharedData: string): Promise<Frames | null> {
  const seed = `${p.key}/${img.name}`;
  if (img.publicSource) {
    const src = join(sharedData, img.publicSource);
    if (!existsSync(src)) return null;
    const jpeg = readFileSync(src);
    const m = await sharp(jpeg).metadata();
    return { frames: [jpeg], rows: m.height ?? 0, columns: m.width ?? 0, samples: 3 };
  }
  if (img.kind === 'fundus') {
    const jpeg = await drawFundusJpeg({ seed, eye: img.eye, lesions: img.lesions, cupToDisc: img.cupToDisc, ungradable: img.expect === 'ungradable' });
    const frame = img.expect === 'corrupt' ? truncateJpeg(jpeg) : jpeg;
    return { frames: [frame], rows: 1024, columns: 1024, samples: 3, preview: frame };
  }
  const n = img.frames ?? 1;
  const frames: Buffer[] = [];
  for (let f = 0; f < n; f++) {
    const offset = n === 1 ? 0 : Math.abs(f - (n - 1) / 2) / ((n - 1) / 2);
    frames.push(await drawOctJpeg({ seed: `${seed}/${f}`, drusen: img.drusen, offset }));
  }
  return { frames, rows: 496, columns: 512, samples: 1, preview: frames[Math.floor(n / 2)] };
}

async function main(): Promise<void> {
  const out = arg('--out', join(repoRoot, 'fixtures'));
  const sharedData = arg('--shared-data', resolve(repoRoot, '..', 'shared', 'data'));
  for (const d of ['images', 'dicom', 'fhir']) mkdirSync(join(out, d), { recursive: true });
  const index = [];
  for (const p of PATIENTS) {
    const instances: GeneratedInstance[] = [];
    const dicomEntries = [];
    const imageEntries = [];
    const studyUid = seededDicomUid(`${p.key}/study`);
    for (const [i, img] of (p.study?.images ?? []).entries()) {
      const modality = img.kind === 'fundus' ? 'OP' : 'OPT';
      const inst: GeneratedInstance = {
        image: img, studyUid, seriesUid: seededDicomUid(`${p.key}/series/${i + 1}`), sopUid: seededDicomUid(`${p.key}/${img.name}/sop`),
        sopClassUid: modality === 'OP' ? SOP_CLASS.ophthalmicPhotography8Bit : SOP_CLASS.ophthalmicTomography,
        modality, seriesNumber: i + 1, frames: img.frames ?? 1, rows: 0, columns: 0,
      };
      const dicomRel = `dicom/${img.name}.dcm`;
      const made = await makeFrames(p, img, sharedData);
      if (made) {
        Object.assign(inst, { rows: made.rows, columns: made.columns, frames: made.frames.length });
        const bytes = wrapJpegAsDicom({
          modality, frames: made.frames, rows: made.rows, columns: made.columns, samplesPerPixel: made.samples, laterality: img.eye,
          patient: { dicomName: `${p.family}^${p.given}`, id: p.mrn, birthDate: p.birthDate.replaceAll('-', ''), sex: p.gender === 'male' ? 'M' : 'F' },
          study: { uid: studyUid, date: p.visit.slice(0, 10).replaceAll('-', ''), time: p.visit.slice(11, 19).replaceAll(':', ''), description: p.study?.description ?? '', accession: `ACC-${p.mrn.slice(-4)}`, id: p.mrn.slice(-4) },
          series: { uid: inst.seriesUid, number: inst.seriesNumber, description: img.name },
          sop: { uid: inst.sopUid, number: 1 },
          pixelSpacing: modality === 'OPT' ? [0.0039, 0.0117] : undefined,
          imageComments: img.publicSource ? IDRID_ATTRIBUTION : undefined,
        });
        writeFileSync(join(out, dicomRel), bytes);
        if (made.preview) {
          writeFileSync(join(out, `images/${img.name}.jpg`), made.preview);
          imageEntries.push({ file: `images/${img.name}.jpg`, eye: img.eye, kind: img.kind, expect: img.expect, ...(img.kind === 'oct-volume' ? { note: 'central B-scan of the volume' } : {}) });
        }
      } else if (existsSync(join(out, dicomRel))) {
        const ds = readFileSync(join(out, dicomRel));
        console.warn(`kept ${dicomRel} (${ds.length} bytes): public source not found under ${sharedData}`);
        const m = await sharp(join(sharedData, img.publicSource ?? '')).metadata().catch(() => ({ width: 3410, height: 2848 }));
        Object.assign(inst, { rows: m.height, columns: m.width });
      } else {
        throw new Error(`cannot make ${dicomRel}: ${img.publicSource} not found under ${sharedData}`);
      }
      instances.push(inst);
      dicomEntries.push({
        file: dicomRel, eye: img.eye, kind: img.kind, expect: img.expect, modality, sopClassUid: inst.sopClassUid,
        studyUid, seriesUid: inst.seriesUid, sopUid: inst.sopUid, frames: inst.frames, rows: inst.rows, columns: inst.columns,
        ...(img.publicSource ? { licence: 'CC BY 4.0', attribution: IDRID_ATTRIBUTION } : {}),
      });
    }
    const bundleRel = `fhir/patient-${p.key}.json`;
    writeFileSync(join(out, bundleRel), `${JSON.stringify(buildBundle(p, instances), null, 2)}\n`);
    index.push({
      key: p.key, mrn: p.mrn, name: `${p.given} ${p.family}`, gender: p.gender, birthDate: p.birthDate,
      description: p.description, exercises: p.exercises, bundle: bundleRel, dicom: dicomEntries, images: imageEntries,
    });
    console.log(`${p.key}: ${dicomEntries.length} DICOM, ${imageEntries.length} images`);
  }
  const header = { generatedBy: 'scripts/generate-fixtures.ts', mrnSystem: 'urn:volmo:sandbox:mrn', dicomWebPlaceholder: 'urn:volmo:sandbox:dicomweb' };
  writeFileSync(join(out, 'index.json'), `${JSON.stringify({ ...header, patients: index }, null, 2)}\n`);
}

await main();
