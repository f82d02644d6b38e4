/**
 * `volmo eval` orchestration (the I/O edge): read the dataset, run each image through the service's image
 * checks (prepareImage) and, when it passes, through the service's own exam (analyseEvidence on the
 * engine), keep every result in the resumable store, then score, summarise and write eval.json,
 * eval.html, reliability.png and thresholds.json.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyseEvidence } from '../analysis/analyse.js';
import { AppError } from '../errors.js';
import type { FindingsConfig, FindingsConfigOverrides } from '../findings/config.js';
import { answersById, modelIdentity } from '../findings/runtime-adapter.js';
import { siteThresholdOverrides } from '../findings/site-thresholds.js';
import { TASK_SET_VERSION } from '../findings/tasks.js';
import { isImageRejection } from '../imaging/rejection.js';
import { prepareImage } from '../imaging/prepare.js';
import type { Answer, VlmEngine } from '../model/runtime/types.js';
import { consoleSummary } from './console-summary.js';
import { evalHtml } from './html.js';
import { readDataset } from './layouts/detect.js';
import { siteThresholds } from './operating-points.js';
import { Progress, type ProgressStream } from './progress.js';
import { reliabilitySvg, renderPng } from './reliability-chart.js';
import { buildReport, type EvalReport } from './report.js';
import { openResults, RESULTS_FILE } from './results-store.js';
import { EVAL_IDS, evalFindingsConfig, scoreImage, singleImageEvidence } from './score.js';
import { summarise, type SummaryOptions } from './summary.js';
import type { Dataset, EvalItem, ImageResult, Layout } from './types.js';

export const OUTPUT_FILES = { json: 'eval.json', html: 'eval.html', png: 'reliability.png', thresholds: 'thresholds.json' } as const;

export interface EvalRunOptions {
  dataset: string;
  layout?: Layout;
  out: string;
  summary: SummaryOptions;
  maxTiles: number;
  imageTimeoutMs: number;
  /** The bands in effect in the service (defaults, or its thresholds file) and where they come from. */
  bands: { overrides: Pick<FindingsConfigOverrides, 'conditionBands' | 'referableDrBand'>; source: string };
  /** Opens the engine once the dataset has been read and checked. */
  openEngine: () => Promise<VlmEngine>;
  stdout: { write(s: string): unknown };
  stderr: ProgressStream;
  progressEvery?: number;
  now?: () => Date;
}

/** The engine as analyseEvidence sees it, keeping a copy of every answer. */
function recording(engine: VlmEngine): { engine: VlmEngine; answers: Answer[] } {
  const answers: Answer[] = [];
  const exam: VlmEngine['exam'] = async (input, opts) => {
    const got = await engine.exam(input, opts);
    answers.push(...got);
    return got;
  };
  return { answers, engine: { info: engine.info, exam, generate: (i, o) => engine.generate(i, o), status: () => engine.status(), close: () => engine.close() } };
}

interface AssessDeps {
  engine: VlmEngine;
  findings: FindingsConfig;
  maxTiles: number;
  timeoutMs: number;
}

/** One image: the service's checks, then (gradable fundus or OCT) the service's exam. */
export async function assessImage(item: EvalItem, bytes: Uint8Array, deps: AssessDeps): Promise<ImageResult> {
  const base = { key: item.key, fileSha256: createHash('sha256').update(bytes).digest('hex') };
  let prepared;
  try {
    prepared = await prepareImage(bytes, { modality: item.modality, eye: item.eye, provenance: { via: 'inline' } });
  } catch (err) {
    if (isImageRejection(err)) return { ...base, outcome: 'rejected', reasons: [err.reason] };
    throw err;
  }
  const { bytes: _pixels, lateralityConflict: _conflict, ...image } = prepared;
  if (image.gradability.status === 'ungradable') return { ...base, outcome: 'ungradable', reasons: [...image.gradability.reasons], image };
  if (image.modality === 'other') return { ...base, outcome: 'not-assessed', reasons: ['modality_unknown'], image };
  const rec = recording(deps.engine);
  const t0 = performance.now();
  await analyseEvidence({ engine: rec.engine, findings: deps.findings, maxTiles: deps.maxTiles }, singleImageEvidence(prepared), EVAL_IDS, { timeoutMs: deps.timeoutMs });
  return { ...base, outcome: 'assessed', reasons: [], image, answers: answersById(rec.answers), modelMs: Math.round(performance.now() - t0) };
}

async function runImages(dataset: Dataset, o: EvalRunOptions, engine: VlmEngine, findings: FindingsConfig): Promise<Map<string, ImageResult>> {
  const store = openResults(o.out, { manifestSha256: engine.info.manifestSha256, modelName: engine.info.name, taskSetVersion: TASK_SET_VERSION, maxTiles: o.maxTiles }, o.now);
  if (store.invalidated) {
    o.stderr.write(`earlier results set aside (${store.invalidated.reason}): ${store.invalidated.results} image(s) moved to ${store.invalidated.movedTo}; starting again\n`);
  }
  const results = new Map<string, ImageResult>();
  const progress = new Progress(dataset.items.length, o.stderr, { every: o.progressEvery });
  let resumed = 0;
  for (const item of dataset.items) {
    const bytes = readFileSync(item.file);
    const prior = store.done.get(item.key);
    if (prior && prior.fileSha256 === createHash('sha256').update(bytes).digest('hex')) {
      results.set(item.key, prior);
      resumed++;
      progress.tick();
      continue;
    }
    const t0 = performance.now();
    let r: ImageResult;
    try {
      r = await assessImage(item, bytes, { engine, findings, maxTiles: o.maxTiles, timeoutMs: o.imageTimeoutMs });
    } catch (err) {
      throw new AppError('model_unavailable', `image ${results.size + 1} of ${dataset.items.length} could not be evaluated: ${(err as Error).message}. ` +
        `${results.size} result(s) are kept in ${join(o.out, RESULTS_FILE)}; run the same command again to continue.`, { cause: err });
    }
    store.append(r);
    results.set(item.key, r);
    progress.tick(performance.now() - t0);
  }
  if (resumed) o.stderr.write(`${resumed} image(s) resumed from ${join(o.out, RESULTS_FILE)}\n`);
  return results;
}

function countReasons(results: Iterable<ImageResult>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) for (const why of r.reasons) out[why] = (out[why] ?? 0) + 1;
  return out;
}

export async function runEval(o: EvalRunOptions): Promise<{ report: EvalReport; files: string[] }> {
  const dataset = readDataset(o.dataset, o.layout);
  const findings = evalFindingsConfig(o.bands.overrides);
  const engine = await o.openEngine();
  let results: Map<string, ImageResult>;
  try {
    results = await runImages(dataset, o, engine, findings);
  } finally {
    await engine.close();
  }
  const score = (cfg: FindingsConfig) => dataset.items.map((i) => scoreImage(results.get(i.key)!, i.labels, cfg));
  const reasons = countReasons(results.values());
  const summary = summarise(score(findings), reasons, o.summary);
  const generatedAt = (o.now?.() ?? new Date()).toISOString();
  const thresholds = siteThresholds(summary, findings, modelIdentity(engine.info), o.summary.targetSensitivity, generatedAt);
  const withFile = summarise(score(evalFindingsConfig({ ...o.bands.overrides, ...siteThresholdOverrides(thresholds) })), reasons, { ...o.summary, resamples: 0 });
  const report = buildReport({
    info: engine.info, dataset, options: o.summary, maxTiles: o.maxTiles, summary, generatedAt,
    bands: { source: o.bands.source, screening: findings.screeningBand, conditions: { ...findings.conditionBands }, referableDr: findings.referableDrBand },
    siteOperatingPoints: { file: OUTPUT_FILES.thresholds, targetSensitivity: o.summary.targetSensitivity, thresholds, withThresholds: { screening: withFile.screening, referableDr: withFile.referableDr } },
  });
  const png = await renderPng(reliabilitySvg([
    { name: 'screening P(TRUE), all conditions', colour: '#1f77b4', calibration: summary.calibration.screening },
    { name: 'P(ICDR ≥ 2) vs ICDR ≥ 2', colour: '#d62728', calibration: summary.calibration.referableDr },
  ], report.banner ?? undefined));
  const files = [OUTPUT_FILES.json, OUTPUT_FILES.html, OUTPUT_FILES.png, OUTPUT_FILES.thresholds].map((f) => join(o.out, f));
  writeFileSync(files[0]!, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files[1]!, evalHtml(report, png));
  writeFileSync(files[2]!, png);
  writeFileSync(files[3]!, `${JSON.stringify(thresholds, null, 2)}\n`);
  o.stdout.write(consoleSummary(report, files));
  return { report, files };
}
