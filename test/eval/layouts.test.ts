/** Dataset readers: the project's CSV, IDRiD's grading CSV and OCTDL's class folders; layout detection; bad input. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/eval/csv.js';
import { parseLabelsCsv, readCsvDataset } from '../../src/eval/layouts/csv-layout.js';
import { detectLayout, readDataset } from '../../src/eval/layouts/detect.js';
import { parseIdridCsv, readIdridDataset } from '../../src/eval/layouts/idrid.js';
import { readOctdlDataset } from '../../src/eval/layouts/octdl.js';

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'volmo-eval-layout-'));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  return root;
}

describe('CSV reader', () => {
  it('quotes, doubled quotes, CRLF, a BOM and blank lines', () => {
    const rows = parseCsv('\uFEFFa,b\r\n"x, y","say ""hi"""\r\n\r\n"multi\nline",2\n', 't.csv');
    expect(rows).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['x, y', 'say "hi"'] },
      { line: 4, fields: ['multi\nline', '2'] },
    ]);
    expect(() => parseCsv('a,b\n"open,1\n', 't.csv')).toThrow(/line 2: a quoted field is not closed/);
  });
});

describe('csv layout (labels.csv)', () => {
  it('reads laterality, modality, grades and condition labels; an empty cell is unlabelled', () => {
    const rows = parseLabelsCsv('image,laterality,modality,icdr_grade,macular_hole_stage,amd,glaucoma\na.jpg,OD,fundus,2,,TRUE,\nb.jpg,l,OPT,,3,false,FALSE\nc.jpg,,,,,,\n');
    expect(rows[0]).toMatchObject({ image: 'a.jpg', eye: 'right', modality: 'OP', labels: { icdrGrade: 2, conditions: { amd: true } } });
    expect(rows[0]!.labels.conditions).not.toHaveProperty('glaucoma');
    expect(rows[1]).toMatchObject({ eye: 'left', modality: 'OPT', labels: { macularHoleStage: 3, conditions: { amd: false, glaucoma: false } } });
    expect(rows[2]).toMatchObject({ eye: 'unknown', labels: { conditions: {} } });
    expect(rows[2]!.modality).toBeUndefined();
  });

  it('reports every bad cell with its line, all at once', () => {
    const text = 'image,laterality,icdr_grade,macular_hole_stage,amd\na.jpg,up,5,0,yes\n,R,1.5,,\n';
    const err = (() => {
      try {
        parseLabelsCsv(text);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(err).toMatch(/6 problem/);
    for (const m of [/line 2: laterality/, /line 2: icdr_grade must be 0–4/, /line 2: macular_hole_stage must be 1–4/, /line 2: amd must be TRUE or FALSE/, /line 3: no image path/, /line 3: icdr_grade/]) expect(err).toMatch(m);
  });

  it('refuses unknown (misspelt) columns, a missing image column and duplicate columns', () => {
    expect(() => parseLabelsCsv('image,glaucome\na.jpg,TRUE\n')).toThrow(/unknown column\(s\) "glaucome"/);
    expect(() => parseLabelsCsv('file,amd\na.jpg,TRUE\n')).toThrow(/"image" column is missing/);
    expect(() => parseLabelsCsv('image,amd,amd\na.jpg,TRUE,TRUE\n')).toThrow(/named twice: amd/);
    expect(() => parseLabelsCsv('')).toThrow(/empty/);
  });

  it('checks the images: inside the folder, present, named once', () => {
    const root = tree({
      'labels.csv': 'image,amd\nimg/a.jpg,TRUE\n../outside.jpg,FALSE\nimg/missing.jpg,\nimg/./a.jpg,FALSE\n/etc/passwd,\n',
      'img/a.jpg': 'x',
    });
    expect(() => readCsvDataset(root)).toThrow(/4 problem/);
    try {
      readCsvDataset(root);
    } catch (e) {
      const m = (e as Error).message;
      expect(m).toMatch(/line 3: the image path must be relative and inside/);
      expect(m).toMatch(/line 4: image file not found/);
      expect(m).toMatch(/line 5: the same image as line 2/);
      expect(m).toMatch(/line 6: the image path must be relative/);
      expect(m).not.toMatch(/passwd|missing\.jpg/); // lines, not file names
    }
    const ok = tree({ 'labels.csv': 'image,amd\nimg/a.jpg,TRUE\n', 'img/a.jpg': 'x' });
    expect(readCsvDataset(ok).items).toEqual([{ key: 'img/a.jpg', file: join(ok, 'img/a.jpg'), eye: 'unknown', labels: { conditions: { amd: true } } }]);
  });
});

const IDRID_HEAD = 'Image name,Retinopathy grade,Risk of macular edema ,,\n';

describe('IDRiD layout', () => {
  it('maps grade and macular-edema risk to ICDR, diabetic retinopathy and macular edema', () => {
    const rows = parseIdridCsv(`${IDRID_HEAD}IDRiD_001,3,2,,\nIDRiD_002,0,0,,\nIDRiD_003,1,1,,\n`, 'g.csv');
    expect(rows.map((r) => r.labels)).toEqual([
      { icdrGrade: 3, conditions: { 'diabetic-retinopathy': true, 'macular-edema': true } },
      { icdrGrade: 0, conditions: { 'diabetic-retinopathy': false, 'macular-edema': false } },
      { icdrGrade: 1, conditions: { 'diabetic-retinopathy': true, 'macular-edema': true } },
    ]);
    expect(() => parseIdridCsv(`${IDRID_HEAD}IDRiD_001,7,3,,\n../x,1,1,,\n`, 'g.csv')).toThrow(/3 problem/);
    expect(() => parseIdridCsv('Image,Grade\nx,1\n', 'g.csv')).toThrow(/not an IDRiD disease-grading CSV/);
  });

  it('finds the images of a training and a testing CSV whose names collide, by split', () => {
    const root = tree({
      '2. Groundtruths/a. IDRiD_Disease Grading_Training Labels.csv': `${IDRID_HEAD}IDRiD_001,2,0,,\n`,
      '2. Groundtruths/b. IDRiD_Disease Grading_Testing Labels.csv': `${IDRID_HEAD}IDRiD_001,0,0,,\n`,
      '1. Original Images/a. Training Set/IDRiD_001.jpg': 'x',
      '1. Original Images/b. Testing Set/IDRiD_001.jpg': 'y',
      '1. Original Images/b. Testing Set/IDRiD_099.jpg': 'z',
    });
    const d = readIdridDataset(root);
    expect(d.items.map((i) => [i.key, i.labels.icdrGrade, i.modality])).toEqual([
      ['1. Original Images/a. Training Set/IDRiD_001.jpg', 2, 'OP'],
      ['1. Original Images/b. Testing Set/IDRiD_001.jpg', 0, 'OP'],
    ]);
    expect(d.notes.join(' ')).toMatch(/1 image file\(s\) without a row/);
  });

  it('an image name without a file is an error naming the CSV line', () => {
    const root = tree({ 'labels-grading.csv': `${IDRID_HEAD}IDRiD_001,2,0,,\nIDRiD_002,1,0,,\n`, 'img/IDRiD_001.jpg': 'x' });
    expect(() => readIdridDataset(root)).toThrow(/labels-grading\.csv line 3: no image file/);
  });
});

describe('OCTDL layout', () => {
  it('maps classes to VOLMO conditions, OCT modality; ignores non-image files', () => {
    const root = tree({ 'AMD/amd_1.jpg': 'x', 'DME/dme_1.png': 'x', 'NO/no_1.jpg': 'x', 'ERM/erm_1.jpg': 'x', 'NO/readme.txt': 'x', 'OCTDL_labels.csv': 'file_name\n' });
    const d = readOctdlDataset(root);
    const byKey = Object.fromEntries(d.items.map((i) => [i.key, i]));
    expect(byKey['AMD/amd_1.jpg']).toMatchObject({ modality: 'OPT', labels: { conditions: { amd: true } } });
    expect(byKey['DME/dme_1.png']!.labels.conditions).toEqual({ 'macular-edema': true, 'diabetic-retinopathy': true });
    expect(byKey['NO/no_1.jpg']!.labels.conditions).toEqual({ amd: false, 'macular-edema': false, 'retinal-vascular-occlusion': false });
    expect(byKey['ERM/erm_1.jpg']!.labels.conditions).toEqual({});
    expect(d.notes.join(' ')).toMatch(/1 non-image file/);
  });

  it('refuses an unknown class folder and a set without images', () => {
    expect(() => readOctdlDataset(tree({ 'AMD/a.jpg': 'x', 'Drusen/b.jpg': 'x' }))).toThrow(/unknown class folder\(s\) "Drusen"/);
    expect(() => readOctdlDataset(tree({ 'AMD/a.txt': 'x' }))).toThrow(/no images/);
  });
});

describe('layout detection', () => {
  it('recognises each layout, refuses none and several', () => {
    expect(detectLayout(tree({ 'labels.csv': 'image\n' }))).toBe('csv');
    expect(detectLayout(tree({ 'NO/a.jpg': 'x' }))).toBe('octdl');
    expect(detectLayout(tree({ 'gt/grading.csv': IDRID_HEAD }))).toBe('idrid');
    expect(() => detectLayout(tree({ 'x.jpg': 'x' }))).toThrow(/cannot tell the dataset layout/);
    expect(() => detectLayout(tree({ 'labels.csv': 'image\n', 'NO/a.jpg': 'x' }))).toThrow(/several layouts \(csv, octdl\); choose one with --layout/);
    expect(() => readDataset(join(tmpdir(), 'no-such-volmo-dataset'))).toThrow(/must be a folder/);
    expect(() => readDataset(tree({ 'NO/a.jpg': 'x' }), 'csv')).toThrow(/labels\.csv not found/);
  });
});
