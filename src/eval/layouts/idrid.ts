/**
 * IDRiD "B. Disease Grading" layout (Porwal et al., Data 2018): a CSV with the columns "Image name",
 * "Retinopathy grade" (0–4, the international DR scale) and "Risk of macular edema" (0–2), and the
 * JPEG images somewhere under the same folder, named "<Image name>.jpg". The folder may hold the
 * training and the testing CSV together; both number their images from IDRiD_001, so an image name that
 * matches several files is resolved by the split word of its CSV ("Training" / "Testing") in the path.
 *
 * Mapping to VOLMO labels (documented in docs/clinical-logic.md):
 *   icdr_grade = Retinopathy grade; diabetic-retinopathy = grade >= 1;
 *   macular-edema = Risk of macular edema >= 1 (hard exudates in the macula, IDRiD's DME grade).
 * Images are fundus photographs (modality OP); laterality is not given (unknown).
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AppError } from '../../errors.js';
import { headerOf, parseCsv } from '../csv.js';
import type { Dataset, EvalItem, Labels } from '../types.js';
import { IMAGE_EXTENSIONS, listFiles, Problems } from './common.js';

const NAME = 'Image name';
const GRADE = 'Retinopathy grade';
const EDEMA = 'Risk of macular edema';

export interface IdridRow {
  line: number;
  name: string;
  labels: Labels;
}

/** Whether a CSV header is IDRiD's disease-grading header. */
export function isIdridHeader(header: readonly string[]): boolean {
  return header.includes(NAME) && header.includes(GRADE);
}

export function parseIdridCsv(text: string, name: string): IdridRow[] {
  const [head, ...rows] = parseCsv(text, name);
  const header = head ? headerOf(head) : [];
  if (!isIdridHeader(header) || !header.includes(EDEMA)) {
    throw new AppError('bad_request', `${name}: not an IDRiD disease-grading CSV (needs "${NAME}", "${GRADE}", "${EDEMA}")`);
  }
  const problems = new Problems(name);
  const col = (r: { fields: string[] }, c: string) => (r.fields[header.indexOf(c)] ?? '').trim();
  const out: IdridRow[] = [];
  for (const r of rows) {
    const imageName = col(r, NAME);
    const grade = col(r, GRADE);
    const edema = col(r, EDEMA);
    if (imageName === '' && grade === '' && edema === '') continue;
    if (!/^[\w.-]+$/.test(imageName)) problems.add(`line ${r.line}: "${NAME}" must be a plain file name`);
    if (!/^[0-4]$/.test(grade)) problems.add(`line ${r.line}: "${GRADE}" must be 0–4`);
    if (!/^[0-2]$/.test(edema)) problems.add(`line ${r.line}: "${EDEMA}" must be 0–2`);
    const g = Number(grade);
    out.push({
      line: r.line,
      name: imageName,
      labels: { icdrGrade: g, conditions: { 'diabetic-retinopathy': g >= 1, 'macular-edema': Number(edema) >= 1 } },
    });
  }
  problems.throwIfAny();
  return out;
}

/** "Training" / "Testing" from IDRiD's CSV file names ("a. IDRiD_Disease Grading_Training Labels.csv"). */
function splitWord(csvPath: string): string | undefined {
  return /training|testing/i.exec(basename(csvPath))?.[0]?.toLowerCase();
}

/** The IDRiD grading CSVs under `root` (relative paths). */
export function findIdridCsvs(root: string, files = listFiles(root)): string[] {
  return files.filter((f) => /\.csv$/i.test(f)).filter((f) => {
    const [head] = parseCsv(readFileSync(join(root, f), 'utf8').slice(0, 4096).split(/\r?\n/)[0] ?? '', f);
    return head !== undefined && isIdridHeader(headerOf(head));
  });
}

export function readIdridDataset(root: string): Dataset {
  const files = listFiles(root);
  const csvs = findIdridCsvs(root, files);
  if (csvs.length === 0) throw new AppError('bad_request', `no IDRiD disease-grading CSV (columns "${NAME}", "${GRADE}", "${EDEMA}") under the dataset folder`);
  const images = files.filter((f) => IMAGE_EXTENSIONS.test(f));
  const byName = new Map<string, string[]>();
  for (const f of images) {
    const stem = basename(f).replace(IMAGE_EXTENSIONS, '');
    byName.set(stem, [...(byName.get(stem) ?? []), f]);
  }
  const items: EvalItem[] = [];
  const problems = new Problems('IDRiD dataset');
  for (const csv of csvs) {
    const split = splitWord(csv);
    for (const row of parseIdridCsv(readFileSync(join(root, csv), 'utf8'), csv)) {
      let found = byName.get(row.name) ?? [];
      if (found.length > 1 && split) found = found.filter((f) => f.toLowerCase().includes(split));
      if (found.length !== 1) {
        problems.add(`${csv} line ${row.line}: ${found.length === 0 ? 'no image file' : 'several image files'} for this image name`);
        continue;
      }
      items.push({ key: found[0]!, file: join(root, found[0]!), eye: 'unknown', modality: 'OP', labels: row.labels });
    }
  }
  problems.throwIfAny();
  const used = new Set(items.map((i) => i.key));
  const notes = [
    `IDRiD labels from ${csvs.length} CSV file(s): ICDR grade = "Retinopathy grade"; diabetic retinopathy = grade >= 1; macular edema = "Risk of macular edema" >= 1.`,
  ];
  const unlabelled = images.filter((f) => !used.has(f)).length;
  if (unlabelled) notes.push(`${unlabelled} image file(s) without a row in the CSV were not used.`);
  return { layout: 'idrid', root, items, notes };
}
