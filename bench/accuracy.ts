/**
 * Accuracy cost of a build variant against the fp32 build of the same snapshot: the product's exam path
 * (planTasks' 12 screening questions + DR stage for one fundus image, the product's tiling, prompts,
 * tokenizer, vision and runExams) over the fixture fundus photos, comparing the full-vocabulary logits of
 * every answer (relative L2 error) and the chosen answers. The accuracy model is a bench snapshot (InternLM2 /
 * InternViT layer geometry, `layers` layers of each, random weights: a TEST MODEL, so these are numerical
 * costs of the quantisation, not clinical accuracy) with the tiny SentencePiece tokenizer.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../src/log.js';
import { DEFAULT_FINDINGS_CONFIG } from '../src/findings/config.js';
import { planTasks } from '../src/findings/plan.js';
import { toRuntimeQuestion } from '../src/findings/runtime-adapter.js';
import type { ExamContext } from '../src/findings/types.js';
import { runExams } from '../src/model/runtime/exam.js';
import { openModelDir } from '../src/model/runtime/model-dir.js';
import { encodeExam } from '../src/model/runtime/onnx-backend.js';
import type { Question } from '../src/model/runtime/types.js';
import { benchSnapshot, FP32_VARIANT, variantDir, type BuildVariant } from './builds.js';

export interface AccuracyRow {
  variant: string;
  /** Mean and max over all answers of ||logits - fp32 logits||2 / ||fp32 logits||2. */
  meanRelErr: number;
  maxRelErr: number;
  /** Answers whose chosen candidate equals the fp32 build's. */
  agree: number;
  /** Answers whose vocabulary argmax equals the fp32 build's. */
  top1Agree: number;
  total: number;
}

const FIXTURE_IMAGES = fileURLToPath(new URL('../fixtures/images/', import.meta.url));

/** The gradable fixture fundus photos (the corrupt and ungradable ones never reach the model in the product). */
export function fixtureFundusImages(): string[] {
  return readdirSync(FIXTURE_IMAGES).filter((f) => /-fundus-/.test(f) && !/^(corrupt|ungradable)-/.test(f)).sort();
}

/** The product's questions for one gradable fundus photo: 12 screening TRUE/FALSE + DR stage. */
export function examQuestions(): Question[] {
  const context: ExamContext = {
    patient: 'Patient/bench',
    effectiveDateTime: '2026-01-01T00:00:00Z',
    imagingStudies: [],
    notes: [],
    images: [{ id: 'img', eye: 'right', modality: 'OP', source: 'bench', contentHash: 'sha256:bench', gradability: { gradable: true } }],
  };
  const tasks = { screening: true, drStaging: true, macularHoleStaging: false, description: false, assessPlan: false };
  return planTasks(context, { ...DEFAULT_FINDINGS_CONFIG, tasks }).tasks.map((t) => toRuntimeQuestion(t));
}

interface ExamOutputs {
  logits: Map<string, Float32Array>;
  choices: Map<string, string>;
}

async function runFixtureExams(dir: string, images: string[], maxTiles: number, log: Logger): Promise<ExamOutputs> {
  const model = await openModelDir(dir, { executionProvider: 'cpu', threads: 0, verifyChecksums: false, log });
  const out: ExamOutputs = { logits: new Map(), choices: new Map() };
  const questions = examQuestions();
  try {
    for (const img of images) {
      const bytes = new Uint8Array(readFileSync(FIXTURE_IMAGES + img));
      const exam = await encodeExam(model, { images: [bytes], maxTiles, questions }, { aborted: false });
      const onChoiceLogits = (_e: number, id: string, l: Float32Array) => out.logits.set(`${img}|${id}`, Float32Array.from(l));
      const [answers] = await runExams(model.decoder, model.spec, [exam], { stopIds: model.manifest.stopIds, onChoiceLogits });
      for (const a of answers) out.choices.set(`${img}|${a.id}`, a.choice ?? '');
    }
  } finally {
    await model.vision.release();
    await model.decoder.release();
  }
  return out;
}

function relL2(a: Float32Array, ref: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (a[i] - ref[i]) ** 2;
    n += ref[i] ** 2;
  }
  return Math.sqrt(d / n);
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

export function compareOutputs(variant: string, got: ExamOutputs, ref: ExamOutputs): AccuracyRow {
  const errs: number[] = [];
  let agree = 0;
  let top1Agree = 0;
  for (const [key, r] of ref.logits) {
    const g = got.logits.get(key);
    if (!g) throw new Error(`${variant}: no answer for ${key}`);
    errs.push(relL2(g, r));
    if (got.choices.get(key) === ref.choices.get(key)) agree++;
    if (argmax(g) === argmax(r)) top1Agree++;
  }
  return { variant, meanRelErr: errs.reduce((a, b) => a + b, 0) / errs.length, maxRelErr: Math.max(...errs), agree, top1Agree, total: errs.length };
}

export async function measureAccuracy(variants: readonly BuildVariant[], layers: number, maxTiles: number, log: Logger): Promise<{ rows: AccuracyRow[]; notes: string[] }> {
  const stem = `volmo-builds-acc-${layers}l`;
  const snap = benchSnapshot(stem, layers, layers, true);
  const images = fixtureFundusImages();
  const ref = await runFixtureExams(await variantDir(snap, stem, FP32_VARIANT, log), images, maxTiles, log);
  const rows: AccuracyRow[] = [];
  for (const v of variants) {
    if (v.name === FP32_VARIANT.name) continue;
    rows.push(compareOutputs(v.name, await runFixtureExams(await variantDir(snap, stem, v, log), images, maxTiles, log), ref));
  }
  const n = ref.logits.size;
  return {
    rows,
    notes: [
      `accuracy: TEST MODEL (random weights) with ${layers} LLM + ${layers} vision layers of VOLMO-2B geometry and the tiny tokenizer; the product's exam path (planTasks: 12 screening + DR stage) on ${images.length} fixture fundus photos (${images.join(', ')}) at up to ${maxTiles} tile(s) each = ${n} answers; logit error = ||logits - fp32||2 / ||fp32||2 over the vocabulary; answers = fp32: same chosen candidate (vocabulary argmax equal: ${rows.map((r) => `${r.variant} ${r.top1Agree}/${r.total}`).join(', ')})`,
    ],
  };
}
