/**
 * `npm run bench runtime -- --parts=builds`: one eye (7 tiles through the vision encoder + the 13-question
 * screening exam) per build variant, measured back to back in one run, with each variant's accuracy cost
 * against the fp32 build of the accuracy model (bench/accuracy.ts). Options: --builds=a,b (default all of
 * BUILD_VARIANTS; the first is the baseline of the ratio), --accuracy-layers=N (8; 0 skips accuracy),
 * --accuracy-tiles=N (1), plus the runtime part's --full/--layers/--tiles/--steps/--reps/--ep.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../src/log.js';
import { buildModel } from '../src/model/build/build-model.js';
import type { WeightDtype } from '../src/model/build/linear.js';
import { writeBenchSnapshot } from '../src/model/bench-snapshot.js';
import { readManifest, type ActivationDtype, type VisionDtype } from '../src/model/manifest.js';
import { decoderSpecOf } from '../src/model/runtime/model-dir.js';
import { embedImages } from '../src/model/runtime/onnx-backend.js';
import { openSession, type ExecutionProvider, type ModelSession } from '../src/model/runtime/onnx-session.js';
import { runExams } from '../src/model/runtime/exam.js';
import { measureAccuracy, type AccuracyRow } from './accuracy.js';
import type { BenchTable } from './table.js';

export interface BuildVariant {
  name: string;
  label: string;
  dtype: WeightDtype;
  activations: ActivationDtype;
  vision: VisionDtype;
}

export const BUILD_VARIANTS: readonly BuildVariant[] = [
  { name: 'int4', label: 'int4 weights, fp32 activations, vision fp16-stored (--dtype int4)', dtype: 'int4', activations: 'fp32', vision: 'fp16' },
  { name: 'int4-a8', label: 'int4, int8 activations (accuracy_level 4)', dtype: 'int4', activations: 'int8', vision: 'fp16' },
  { name: 'int4-a8-v4', label: 'int4, int8 activations, vision int4', dtype: 'int4', activations: 'int8', vision: 'int4' },
  { name: 'int8-v8', label: 'int8 weights (7-bit per channel, DynamicQuantizeMatMul), vision int8', dtype: 'int8', activations: 'fp32', vision: 'int8' },
  { name: 'int4-a8-v8', label: 'int4, int8 activations, vision int8 (7-bit weights)', dtype: 'int4', activations: 'int8', vision: 'int8' },
];
export const FP32_VARIANT: BuildVariant = { name: 'fp32', label: 'fp32 (reference)', dtype: 'fp32', activations: 'fp32', vision: 'fp32' };

export function selectVariants(list: string): BuildVariant[] {
  const names = list.split(',').filter(Boolean);
  const known = [...BUILD_VARIANTS, FP32_VARIANT];
  const unknown = names.filter((n) => !known.some((v) => v.name === n));
  if (unknown.length) throw new Error(`unknown build(s) ${unknown.join(', ')}; known: ${known.map((v) => v.name).join(', ')}`);
  return names.map((n) => known.find((v) => v.name === n)!);
}

/** The variant's model directory under the OS temp dir, built on first use from `snapshot`. */
export async function variantDir(snapshot: string, stem: string, v: BuildVariant, log?: Logger): Promise<string> {
  const dir = join(tmpdir(), `${stem}-${v.name}`);
  if (!existsSync(join(dir, 'manifest.json'))) {
    await buildModel(snapshot, dir, { dtype: v.dtype, activations: v.activations, vision: v.vision, logger: log });
  }
  return dir;
}

/** A bench snapshot under the OS temp dir (written on first use). */
export function benchSnapshot(stem: string, layers: number, visionLayers: number, tokenizer = false): string {
  const snap = join(tmpdir(), `${stem}-snapshot`);
  mkdirSync(snap, { recursive: true });
  if (!existsSync(join(snap, 'config.json'))) writeBenchSnapshot(snap, { layers, visionLayers, tokenizer });
  return snap;
}

/** Figures of a provider that fell back to CPU would be reported under the wrong name: refuse them. */
export function assertProvider(s: ModelSession, ep: ExecutionProvider): void {
  if (s.executionProvider !== ep) throw new Error(`execution provider ${ep} was requested but the session fell back to ${s.executionProvider} (see the log line; --verbose)`);
}

interface EyeTiming {
  msPerTile: number;
  msPerToken: number;
  visionMs: number;
  examMs: number;
}

export interface EyeDeps {
  /** The runtime bench's split-KV decode timing at a context. */
  decodeMs(s: Awaited<ReturnType<typeof openSession>>, spec: ReturnType<typeof decoderSpecOf>, ctx: number, steps: number): Promise<number>;
  /** The runtime bench's synthetic screening exam (13 questions, `tiles` tiles of image rows). */
  exam(spec: ReturnType<typeof decoderSpecOf>, tiles: number, imgContext: number): Parameters<typeof runExams>[2][number];
}

/** One eye on a built model: vision over `tiles` tiles, then the exam; decode ms/token at the exam's context. */
async function oneEye(dir: string, ep: ExecutionProvider, tiles: number, steps: number, log: Logger, deps: EyeDeps): Promise<EyeTiming> {
  const manifest = readManifest(dir);
  const S = manifest.imageSize;
  const vision = await openSession(join(dir, manifest.graphs.vision.file), { executionProvider: ep, log });
  let visionMs: number;
  try {
    assertProvider(vision, ep);
    const image = (n: number) => ({ tileCount: n, tiles: Float32Array.from({ length: n * 3 * S * S }, (_, i) => Math.sin(i) * 0.8) });
    const model = { manifest, vision };
    const never = { aborted: false };
    await embedImages(model, [image(1)], never); // warm-up
    const t0 = performance.now();
    await embedImages(model, [image(tiles)], never);
    visionMs = performance.now() - t0;
  } finally {
    await vision.release();
  }
  const spec = decoderSpecOf(manifest);
  const s = await openSession(join(dir, manifest.graphs.decoder.file), { executionProvider: ep, log, keepOnDevice: ['present_*'] });
  try {
    assertProvider(s, ep);
    await deps.decodeMs(s, spec, 64, 2); // warm-up
    const exam = deps.exam(spec, tiles, manifest.tokens.imgContext);
    const t0 = performance.now();
    await runExams(s, spec, [exam], { stopIds: manifest.stopIds });
    const examMs = performance.now() - t0;
    const ctx = exam.questions[0].ids.length;
    const msPerToken = await deps.decodeMs(s, spec, ctx, steps);
    return { msPerTile: visionMs / tiles, msPerToken, visionMs, examMs };
  } finally {
    await s.release();
  }
}

export interface BuildsBenchOptions {
  variants: BuildVariant[];
  snapshot: string;
  stem: string;
  layers: number;
  ep: ExecutionProvider;
  tiles: number;
  steps: number;
  accuracyLayers: number;
  accuracyTiles: number;
  log: Logger;
  deps: EyeDeps;
}

/** Builds every variant first (so build time and memory never overlap a measurement), then times them back to back. */
export async function buildsTable(o: BuildsBenchOptions): Promise<BenchTable> {
  const dirs: string[] = [];
  for (const v of o.variants) dirs.push(await variantDir(o.snapshot, o.stem, v, o.log));
  const timings: EyeTiming[] = [];
  for (const dir of dirs) timings.push(await oneEye(dir, o.ep, o.tiles, o.steps, o.log, o.deps));
  const accuracy = o.accuracyLayers > 0 ? await measureAccuracy(o.variants, o.accuracyLayers, o.accuracyTiles, o.log) : null;
  const base = timings[0].visionMs + timings[0].examMs;
  const fmtErr = (a: AccuracyRow | undefined) => (a ? `${a.meanRelErr.toExponential(2)} (max ${a.maxRelErr.toExponential(2)})` : '—');
  const fmtAgree = (a: AccuracyRow | undefined) => (a ? `${a.agree}/${a.total}` : '—');
  return {
    title: `Runtime: one eye (${o.tiles} tiles + 13-question exam) per build (${o.layers} LLM layers, EP ${o.ep})`,
    columns: ['build', 'vision ms/tile', 'decode ms/token', `one eye s`, `time vs ${o.variants[0].name}`, 'logit rel. error vs fp32 (mean, max)', 'answers = fp32'],
    rows: o.variants.map((v, i) => {
      const t = timings[i];
      const eye = t.visionMs + t.examMs;
      const a = accuracy?.rows.find((r) => r.variant === v.name);
      return [`${v.name}: ${v.label}`, t.msPerTile, t.msPerToken, eye / 1000, eye / base, fmtErr(a), fmtAgree(a)];
    }),
    notes: [
      `one eye = vision over ${o.tiles} tiles (the product's embedImages) + the exam (prefix prefill, 12 TRUE/FALSE + DR stage single-step answers batched; the runtime part's synthetic exam); one run each, built first, measured back to back; decode ms/token: split loop, ${o.steps} steps at the exam's context`,
      `target (issue 12): one eye <= 0.5x ${o.variants[0].name} in the same run`,
      ...(accuracy?.notes ?? ['accuracy: skipped (--accuracy-layers=0)']),
    ],
  };
}
