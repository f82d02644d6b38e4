/**
 * The project's own layout: a folder with `labels.csv` and the images it names. Columns (header names,
 * any order; only `image` is required; an empty cell = not labelled):
 *   image                 path of the image relative to the folder (JPEG, PNG or DICOM)
 *   laterality            right | left | R | L | OD | OS (empty: unknown)
 *   modality              OP | OPT (also fundus | oct); empty: the image gate decides (fundus photographs are recognised)
 *   icdr_grade            0–4
 *   macular_hole_stage    1–4
 *   <condition id>        TRUE | FALSE, one column per VOLMO screening condition (amd, diabetic-retinopathy, …)
 * Unknown columns are refused (a misspelt condition would otherwise be silently unlabelled).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../errors.js';
import { CONDITIONS, type ConditionId } from '../../findings/tasks.js';
import { headerOf, parseCsv } from '../csv.js';
import type { Dataset, EvalItem, Labels } from '../types.js';
import { isFile, Problems, safeRelative } from './common.js';

export const LABELS_FILE = 'labels.csv';

const CONDITION_IDS = new Set<string>(CONDITIONS.map((c) => c.id));
const FIXED = ['image', 'laterality', 'modality', 'icdr_grade', 'macular_hole_stage'] as const;
export const CSV_COLUMNS: readonly string[] = [...FIXED, ...CONDITIONS.map((c) => c.id)];

const EYES: Record<string, EvalItem['eye']> = { right: 'right', r: 'right', od: 'right', left: 'left', l: 'left', os: 'left', unknown: 'unknown', '': 'unknown' };
const MODALITIES: Record<string, EvalItem['modality']> = { op: 'OP', fundus: 'OP', opt: 'OPT', oct: 'OPT', '': undefined };

export interface LabelRow {
  line: number;
  image: string;
  eye: EvalItem['eye'];
  modality?: EvalItem['modality'];
  labels: Labels;
}

function integerIn(v: string, lo: number, hi: number): number | undefined | null {
  if (v === '') return undefined;
  const n = Number(v);
  return /^\d+$/.test(v) && n >= lo && n <= hi ? n : null;
}

/** Parses labels.csv text; every problem is collected, then thrown together (AppError bad_request). */
export function parseLabelsCsv(text: string, name = LABELS_FILE): LabelRow[] {
  const problems = new Problems(name);
  const [head, ...rows] = parseCsv(text, name);
  if (!head) throw new AppError('bad_request', `${name}: the file is empty`);
  const header = headerOf(head);
  const unknown = header.filter((h) => !CSV_COLUMNS.includes(h));
  if (unknown.length) problems.add(`unknown column(s) ${unknown.map((u) => `"${u}"`).join(', ')}; known: ${CSV_COLUMNS.join(', ')}`);
  if (!header.includes('image')) problems.add('the "image" column is missing');
  const dup = header.filter((h, i) => header.indexOf(h) !== i);
  if (dup.length) problems.add(`column(s) named twice: ${dup.join(', ')}`);
  problems.throwIfAny();
  const out: LabelRow[] = [];
  for (const row of rows) {
    const cell = (col: string) => (row.fields[header.indexOf(col)] ?? '').trim();
    const at = `line ${row.line}`;
    if (row.fields.length > header.length && row.fields.slice(header.length).some((f) => f.trim() !== '')) problems.add(`${at}: more cells than columns`);
    const image = cell('image');
    if (image === '') problems.add(`${at}: no image path`);
    const eye = EYES[cell('laterality').toLowerCase()];
    if (eye === undefined) problems.add(`${at}: laterality must be right, left, R, L, OD or OS`);
    const modalityKey = cell('modality').toLowerCase();
    if (!(modalityKey in MODALITIES)) problems.add(`${at}: modality must be OP or OPT`);
    const labels: Labels = { conditions: {} };
    const grade = integerIn(cell('icdr_grade'), 0, 4);
    if (grade === null) problems.add(`${at}: icdr_grade must be 0–4`);
    else if (grade !== undefined) labels.icdrGrade = grade;
    const stage = integerIn(cell('macular_hole_stage'), 1, 4);
    if (stage === null) problems.add(`${at}: macular_hole_stage must be 1–4`);
    else if (stage !== undefined) labels.macularHoleStage = stage;
    for (const col of header.filter((h) => CONDITION_IDS.has(h))) {
      const v = cell(col).toUpperCase();
      if (v === 'TRUE' || v === 'FALSE') labels.conditions[col as ConditionId] = v === 'TRUE';
      else if (v !== '') problems.add(`${at}: ${col} must be TRUE or FALSE`);
    }
    out.push({ line: row.line, image, eye: eye ?? 'unknown', modality: MODALITIES[modalityKey], labels });
  }
  problems.throwIfAny();
  return out;
}

/** Reads `<root>/labels.csv` and checks that every image exists inside the folder. */
export function readCsvDataset(root: string): Dataset {
  const rows = parseLabelsCsv(readFileSync(join(root, LABELS_FILE), 'utf8'));
  const problems = new Problems(LABELS_FILE);
  const items: EvalItem[] = [];
  const seen = new Map<string, number>();
  for (const r of rows) {
    const key = safeRelative(root, r.image);
    if (!key) {
      problems.add(`line ${r.line}: the image path must be relative and inside the dataset folder`);
      continue;
    }
    if (seen.has(key)) problems.add(`line ${r.line}: the same image as line ${seen.get(key)}`);
    seen.set(key, r.line);
    const file = join(root, key);
    if (!isFile(file)) problems.add(`line ${r.line}: image file not found`);
    items.push({ key, file, eye: r.eye, ...(r.modality ? { modality: r.modality } : {}), labels: r.labels });
  }
  problems.throwIfAny();
  return { layout: 'csv', root, items, notes: [] };
}
