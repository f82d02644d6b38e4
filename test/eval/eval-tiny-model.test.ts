/**
 * `volmo eval` end to end with the tiny random-weight model the project builds itself, in each layout
 * (small datasets made from fixtures/ images and /work/shared/data images): the service's image gate,
 * exam and findings code run for real; outputs are labelled TEST MODEL; the numbers are mechanics, not
 * accuracy. Also: resume, a changed image, a changed model, a model failure mid-run, the CLI.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runEvalCli } from '../../src/eval/cli.js';
import { EVAL_TEST_MODEL_BANNER, type EvalReport } from '../../src/eval/report.js';
import { RESULTS_FILE } from '../../src/eval/results-store.js';
import { runEval, type EvalRunOptions } from '../../src/eval/run.js';
import type { Summary } from '../../src/eval/summary.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { createEngine } from '../../src/model/runtime/engine.js';
import type { VlmEngine } from '../../src/model/runtime/types.js';
import { buildTiny } from '../model/model-harness.js';

const FIX = new URL('../../fixtures/images/', import.meta.url).pathname;
const SHARED = '/work/shared/data';
const img = (name: string) => join(FIX, name);

let modelDir: string;
let otherModelDir: string;
beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), 'volmo-eval-model-'));
  modelDir = (await buildTiny({ root })).outDir;
  otherModelDir = (await buildTiny({ root: join(root, 'other'), seed: 99 })).outDir;
}, 180_000);

afterEach(() => vi.unstubAllEnvs());

function dataset(files: Record<string, string>, texts: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'volmo-eval-ds-'));
  for (const [rel, src] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    copyFileSync(src, join(root, rel));
  }
  for (const [rel, text] of Object.entries(texts)) writeFileSync(join(root, rel), text);
  return root;
}

const sink = () => {
  const chunks: string[] = [];
  return { chunks, write: (s: string) => chunks.push(s), get text() { return chunks.join(''); } };
};

function options(ds: string, out: string, extra: Partial<EvalRunOptions> = {}) {
  const stdout = sink();
  const stderr = sink();
  const o: EvalRunOptions = {
    dataset: ds, out, maxTiles: 1, imageTimeoutMs: 120_000,
    summary: { resamples: 50, seed: 1, targetSensitivity: 0.9, bins: 10 },
    bands: { overrides: {}, source: 'defaults' },
    openEngine: () => createEngine({ modelDir, log: silentLogger(), verifyChecksums: false }),
    stdout, stderr, progressEvery: 2,
    ...extra,
  };
  return { o, stdout, stderr };
}

const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as EvalReport;
const resultLines = (out: string) => readFileSync(join(out, RESULTS_FILE), 'utf8').trim().split('\n').length - 1;

/** Every labelled case is either scored or counted with its reason. */
function expectAccounted(s: Summary): void {
  for (const c of [...s.screening, s.referableDr, s.drStage, s.macularHole]) {
    expect(c.scored + Object.values(c.unscored).reduce((a, b) => a + b, 0)).toBe(c.labelled);
  }
}

const CSV = [
  'image,laterality,modality,icdr_grade,macular_hole_stage,amd,diabetic-retinopathy,macular-edema,glaucoma',
  'img/diabetic-od.jpg,right,OP,2,,FALSE,TRUE,TRUE,FALSE',
  'img/glaucoma-os.jpg,left,,0,,FALSE,FALSE,FALSE,TRUE',
  'img/ungradable-od.jpg,R,OP,1,,,TRUE,FALSE,',
  'img/corrupt-od.jpg,R,OP,,,,,,',
  'img/amd-oct-os.jpg,OS,OPT,,3,TRUE,,,',
  'img/octdl-normal.jpg,,,,,,,,',
].join('\n');

const csvDataset = () => dataset({
  'img/diabetic-od.jpg': img('diabetic-fundus-od.jpg'),
  'img/glaucoma-os.jpg': img('glaucoma-fundus-os.jpg'),
  'img/ungradable-od.jpg': img('ungradable-fundus-od.jpg'),
  'img/corrupt-od.jpg': img('corrupt-fundus-od.jpg'),
  'img/amd-oct-os.jpg': img('amd-oct-bscan-os.jpg'),
  'img/octdl-normal.jpg': join(SHARED, 'oct/no_1409061_1.jpg'),
}, { 'labels.csv': `${CSV}\n` });

describe('volmo eval with the tiny test model', () => {
  it('csv layout: gate outcomes counted, every output labelled, self-contained HTML, loadable thresholds; a second run resumes', async () => {
    const ds = csvDataset();
    const out = mkdtempSync(join(tmpdir(), 'volmo-eval-out-'));
    const { o, stdout, stderr } = options(ds, out);
    const { report, files } = await runEval(o);
    const s = report.summary;
    expect(report.banner).toBe(EVAL_TEST_MODEL_BANNER);
    expect(report.model.random).toBe(true);
    expect(report.dataset.layout).toBe('csv');
    expect(s.images.byOutcome).toEqual({ assessed: 3, ungradable: 1, rejected: 1, 'not-assessed': 1 });
    expect(s.images.ungradableRate).toBeCloseTo(2 / 6, 12);
    expect(s.images.reasons).toMatchObject({ corrupt: 1, modality_unknown: 1, too_dark: 1 });
    expectAccounted(s);
    const amd = s.screening.find((c) => c.condition === 'amd')!;
    expect(amd.labelled).toBe(3);
    expect(amd.unscored.notAsked).toBe(1); // the OCT image: the service screens fundus photographs only
    expect(s.drStage.labelled).toBe(3);
    expect(s.drStage.unscored.ungradable).toBe(1);
    expect(s.macularHole.labelled).toBe(1);
    expect(s.calibration.screening.n).toBeGreaterThan(0); // answer-token probabilities of the fundus images
    expect(s.calibration.screening.ece!).toBeGreaterThanOrEqual(0);
    expect(s.calibration.screening.ece!).toBeLessThanOrEqual(1);

    // Outputs: JSON, HTML (banner first and last, PNG inline, nothing external), PNG, thresholds.
    const json = readFileSync(files[0]!, 'utf8');
    expect(JSON.parse(json).banner).toBe(EVAL_TEST_MODEL_BANNER);
    expect(json).not.toMatch(/diabetic-od|glaucoma-os/); // no image names in the report
    const html = readFileSync(files[1]!, 'utf8');
    expect(html.split(EVAL_TEST_MODEL_BANNER)).toHaveLength(3);
    expect(html).toMatch(/<img alt="reliability diagram" src="data:image\/png;base64,[A-Za-z0-9+/=]{100,}">/);
    expect(html).not.toMatch(/<script|<link|(src|href)="(https?:)?\/\//i);
    expect(html).toMatch(/IDx-DR — published/);
    expect(await sharp(readFileSync(files[2]!)).metadata()).toMatchObject({ format: 'png', width: 640 });
    const cfg = loadConfig({ VOLMO_FINDINGS_THRESHOLDS_FILE: files[3]! });
    expect(cfg.findingsThresholds!.banner).toBe(EVAL_TEST_MODEL_BANNER);
    expect(cfg.findingsThresholds!.model!.manifestSha256).toBe(report.model.manifestSha256);
    const lines = stdout.text.trim().split('\n');
    expect(lines[0]).toBe(EVAL_TEST_MODEL_BANNER);
    expect(lines.at(-1)).toBe(EVAL_TEST_MODEL_BANNER);
    expect(stderr.text).toMatch(/\[#+\.*\] 2\/6 33% ETA \d+s\n/);
    expect(stderr.text).toMatch(/\[#{24}\] 6\/6 100%\n/);
    expect(resultLines(out)).toBe(6);

    // Second run: nothing is run again, the same numbers come out.
    const second = options(ds, out, { openEngine: async () => countingEngine(await createEngine({ modelDir, log: silentLogger(), verifyChecksums: false })) });
    const again = await runEval(second.o);
    expect(exams).toBe(0);
    expect(second.stderr.text).toMatch(/6 image\(s\) resumed/);
    expect(again.report.summary).toEqual(report.summary);
    expect(resultLines(out)).toBe(6);

    // A changed image file is run again; the others are kept.
    copyFileSync(img('amd-fundus-od.jpg'), join(ds, 'img/glaucoma-os.jpg'));
    const third = options(ds, out, { openEngine: async () => countingEngine(await createEngine({ modelDir, log: silentLogger(), verifyChecksums: false })) });
    await runEval(third.o);
    expect(exams).toBe(1);
    expect(third.stderr.text).toMatch(/5 image\(s\) resumed/);

    // Another model: the earlier results are set aside, everything runs again.
    const fourth = options(ds, out, { openEngine: () => createEngine({ modelDir: otherModelDir, log: silentLogger(), verifyChecksums: false }) });
    const other = await runEval(fourth.o);
    expect(fourth.stderr.text).toMatch(/earlier results set aside \(the model changed .*\): 6 image\(s\) moved to .*results\.stale-/);
    expect(fourth.stderr.text).not.toMatch(/resumed/);
    expect(other.report.model.manifestSha256).not.toBe(report.model.manifestSha256);
  }, 240_000);

  it('a model failure mid-run keeps what was done; the same command continues', async () => {
    const ds = dataset({ 'a.jpg': img('diabetic-fundus-od.jpg'), 'b.jpg': img('glaucoma-fundus-os.jpg'), 'c.jpg': img('corrupt-fundus-od.jpg') },
      { 'labels.csv': 'image,modality,glaucoma\na.jpg,OP,FALSE\nb.jpg,OP,TRUE\nc.jpg,OP,\n' });
    const out = mkdtempSync(join(tmpdir(), 'volmo-eval-out-'));
    const failing = options(ds, out, { openEngine: async () => failingEngine(await createEngine({ modelDir, log: silentLogger(), verifyChecksums: false }), 1) });
    await expect(runEval(failing.o)).rejects.toThrow(/image 2 of 3 could not be evaluated: worker died\. 1 result\(s\) are kept in .*results\.jsonl; run the same command again/);
    expect(resultLines(out)).toBe(1);
    const resumed = options(ds, out);
    const { report } = await runEval(resumed.o);
    expect(resumed.stderr.text).toMatch(/1 image\(s\) resumed/);
    expect(report.summary.images.total).toBe(3);
    expect(report.summary.images.byOutcome).toMatchObject({ assessed: 2, rejected: 1 });
  }, 180_000);

  it('IDRiD layout: ICDR grade and macular-edema risk become DR stage, referable DR and two conditions', async () => {
    const head = 'Image name,Retinopathy grade,Risk of macular edema \n';
    const ds = dataset({
      'B. Disease Grading/1. Original Images/a. Training Set/IDRiD_01.jpg': join(SHARED, 'fundus/IDRiD_01.jpg'),
      'B. Disease Grading/1. Original Images/a. Training Set/IDRiD_02.jpg': img('diabetic-fundus-os.jpg'),
    }, { 'a. IDRiD_Disease Grading_Training Labels.csv': `${head}IDRiD_01,3,2\nIDRiD_02,0,0\n` });
    const out = mkdtempSync(join(tmpdir(), 'volmo-eval-out-'));
    const { report } = await runEval(options(ds, out).o);
    const s = report.summary;
    expect(report.dataset.layout).toBe('idrid');
    expect(s.images.byOutcome.assessed + s.images.byOutcome.ungradable).toBe(2);
    expect(s.drStage.labelled).toBe(2);
    expect(s.referableDr.labelled).toBe(2);
    expect(s.screening.find((c) => c.condition === 'macular-edema')!.labelled).toBe(2);
    expect(s.calibration.referableDr.n).toBe(s.images.byOutcome.assessed);
    expectAccounted(s);
  }, 120_000);

  it('OCTDL layout (through the CLI): classes become labels; OCT images are staged, not screened', async () => {
    const ds = dataset({ 'NO/no_1409061_1.jpg': join(SHARED, 'oct/no_1409061_1.jpg'), 'AMD/amd_1.jpg': img('amd-oct-bscan-os.jpg') });
    const out = mkdtempSync(join(tmpdir(), 'volmo-eval-out-'));
    vi.stubEnv('VOLMO_MAX_TILES', '1');
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const errs = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runEvalCli([ds, '--model', modelDir, '--out', out, '--bootstrap', '20'])).toBe(0);
    } finally {
      write.mockRestore();
      errs.mockRestore();
    }
    const r = readJson(join(out, 'eval.json'));
    expect(r.dataset.layout).toBe('octdl');
    expect(r.banner).toBe(EVAL_TEST_MODEL_BANNER);
    expect(r.settings.maxTiles).toBe(1);
    expect(r.summary.images.byOutcome.assessed).toBe(2);
    const amd = r.summary.screening.find((c) => c.condition === 'amd')!;
    expect(amd).toMatchObject({ labelled: 2, scored: 0, unscored: { notAsked: 2 } });
    expect(r.dataset.notes.join(' ')).toMatch(/fundus photographs only/);
    expectAccounted(r.summary);
  }, 120_000);
});

describe('volmo eval command line: bad input is a clear error before any model runs', () => {
  const run = async (args: string[]) => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const code = await runEvalCli(args);
      return { code, message: err.mock.calls.map((c) => String(c[0])).join('\n') };
    } finally {
      err.mockRestore();
    }
  };

  it('usage errors exit 2 with the usage text', async () => {
    expect(await run([])).toMatchObject({ code: 2, message: expect.stringMatching(/exactly one <dataset-dir>[\s\S]*usage: volmo eval/) });
    expect(await run(['x', '--layout', 'kaggle'])).toMatchObject({ code: 2, message: expect.stringMatching(/--layout must be one of csv, idrid, octdl/) });
    expect(await run(['x', '--target-sensitivity', '1.5'])).toMatchObject({ code: 2, message: expect.stringMatching(/--target-sensitivity must be in \(0, 1\]/) });
    expect(await run(['x', '--bootstrap', '-3'])).toMatchObject({ code: 2 });
    expect(await run(['x', '--frobnicate'])).toMatchObject({ code: 2, message: expect.stringMatching(/frobnicate/) });
    vi.stubEnv('VOLMO_MODEL_DIR', '');
    expect(await run(['x'])).toMatchObject({ code: 2, message: expect.stringMatching(/no model: pass --model DIR or set VOLMO_MODEL_DIR/) });
  });

  it('a bad dataset exits 1 naming its problems; no model is opened', async () => {
    const ds = dataset({}, { 'labels.csv': 'image,amd\nmissing.jpg,MAYBE\n' });
    const r = await run([ds, '--model', join(tmpdir(), 'no-model-here')]);
    expect(r.code).toBe(1);
    expect(r.message).toMatch(/labels\.csv: 1 problem[\s\S]*line 2: amd must be TRUE or FALSE/);
  });
});

let exams = 0;
/** The real engine, counting exams (to show that resumed images are not run again). */
function countingEngine(e: VlmEngine): VlmEngine {
  exams = 0;
  return { ...bind(e), exam: (i, o) => {
    exams++;
    return e.exam(i, o);
  } };
}

/** The real engine, failing after `okExams` exams (a model that dies mid-run). */
function failingEngine(e: VlmEngine, okExams: number): VlmEngine {
  let n = 0;
  return { ...bind(e), exam: (i, o) => (n++ < okExams ? e.exam(i, o) : Promise.reject(new Error('worker died'))) };
}

function bind(e: VlmEngine): VlmEngine {
  return { info: e.info, exam: (i, o) => e.exam(i, o), generate: (i, o) => e.generate(i, o), status: () => e.status(), close: () => e.close() };
}
