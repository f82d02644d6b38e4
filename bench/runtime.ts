/**
 * Runtime benchmark on the bench model (InternLM2-1.8B layer geometry, few layers, random weights): vision ms
 * per tile, decode ms/token by context for the split-KV loop vs (a) a naive loop that passes the whole KV
 * through JS every step and (b) transformers.js, prefill tokens/s, and a screening exam (12 TRUE/FALSE + DR
 * stage) with vs without prefix reuse. Options (`--name=value`): --layers=N (2), --full (VOLMO-2B size: 24
 * LLM and 24 vision layers; int4 unless --dtype says otherwise), --model=DIR (reuse a built model),
 * --ep=cpu|webgpu, --steps=N (16), --contexts=256,1024,2048,4096, --tiles=N (7 = one fundus photo at VOLMO's
 * settings), --parts=vision,decode,exam, --dtype=fp32|fp16|int4 (built on first use under the OS temp dir),
 * --verbose, --baseline=auto|transformers|none: baseline (b), transformers.js generating with the same decoder
 * weights (bench/transformers-baseline; `auto` measures it when installed, `transformers` installs it on first
 * use), --snapshot=DIR (the snapshot of a --model=DIR, for the transformers.js export), --reps=N (3; decode
 * figures are medians of N interleaved rounds; other parts take the best of N), --skip-no-reuse (the exam
 * without prefix reuse runs 13 whole prompts: minutes at full size). Part `assess-plan` (in --parts; default on):
 * VOLMO's five assessment-and-plan steps for one case as the second stage runs them, --plan-tokens=N (16) new
 * tokens per step (random weights never stop early), independent steps (one exam, shared image prefix) and
 * chained steps (five exams, each with the earlier turns as history), against the screening exam of the same run.
 * The `builds` part (bench/builds.ts) measures one eye per build variant (--builds=int4,int4-a8,...) and each
 * variant's accuracy cost vs fp32.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, createLogger, type Logger } from '../src/log.js';
import { readManifest, type Manifest } from '../src/model/manifest.js';
import { buildModel } from '../src/model/build/build-model.js';
import { openSession, type ExecutionProvider, type ModelSession } from '../src/model/runtime/onnx-session.js';
import { decoderSpecOf } from '../src/model/runtime/model-dir.js';
import { argmax, decode, firstStep, prefill, type DecoderSpec } from '../src/model/runtime/generate.js';
import { PastKv, PrefixKv, presentsOf } from '../src/model/runtime/kv.js';
import { stepFeeds } from '../src/model/runtime/decoder-feeds.js';
import { runExams, type EncodedExam } from '../src/model/runtime/exam.js';
import { embedImages } from '../src/model/runtime/onnx-backend.js';
import type { TensorLike } from '../src/model/runtime/tensor.js';
import type { BenchTable } from './table.js';
import { assertSameGreedy, openTransformersBaseline, type BaselineMode } from './transformers-baseline/bench-part.js';
import type { TransformersDecoder } from './transformers-baseline/baseline.js';
import { assertProvider, benchSnapshot, BUILD_VARIANTS, buildsTable, selectVariants } from './builds.js';
import { measureAccuracy } from './accuracy.js';

/** `--name=value` (bench/index.ts takes every bare word as a part name). */
function opt(args: string[], name: string, dflt: string): string {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}

function randomKv(spec: DecoderSpec, len: number): TensorLike[] {
  return Array.from({ length: spec.layers }, () => ({
    type: 'float32' as const,
    dims: [1, spec.kvHeads, len, spec.headDim],
    data: Float32Array.from({ length: spec.kvHeads * len * spec.headDim }, (_, i) => Math.sin(i) * 0.5),
  }));
}

interface BenchModel {
  dir: string;
  /** The snapshot it came from (null when only --model=DIR is given). */
  snapshot: string | null;
  layers: number;
}

/** The built model directory: --model=DIR, or a bench model built on first use under the OS temp dir. */
async function ensureModel(args: string[]): Promise<BenchModel> {
  const given = opt(args, 'model', '');
  if (given) return { dir: given, snapshot: opt(args, 'snapshot', '') || null, layers: readManifest(given).llm.layers };
  const full = args.includes('--full');
  const layers = full ? 24 : Number(opt(args, 'layers', '2'));
  const dtype = opt(args, 'dtype', full ? 'int4' : 'fp32') as 'fp32' | 'fp16' | 'int4';
  const name = full ? 'volmo-bench-full' : `volmo-bench-${layers}l`;
  const dir = join(tmpdir(), `${name}-${dtype}`);
  const snap = benchSnapshot(name, layers, full ? 24 : 1);
  if (!existsSync(join(dir, 'manifest.json'))) await buildModel(snap, dir, { dtype });
  return { dir, snapshot: snap, layers };
}

/** ms per token of `steps` greedy decode steps after a context of `ctx` tokens held as prefix KV (split design). */
async function splitDecode(s: ModelSession, spec: DecoderSpec, ctx: number, steps: number): Promise<number> {
  // On a GPU provider the prefix must come from a run so that it stays on the device, as in the product.
  const prefix = s.executionProvider === 'cpu'
    ? new PrefixKv(spec, 1, ctx, { keys: randomKv(spec, ctx), values: randomKv(spec, ctx) })
    : await prefill(s, spec, Array.from({ length: ctx }, (_, i) => 100 + ((i * 7919) % 20000)), undefined, { chunk: ctx });
  const first = await firstStep(s, spec, prefix, [5]);
  const t0 = performance.now();
  await decode(s, spec, prefix, first.past, first.logits, { maxNewTokens: steps + 1, stopIds: [] });
  const ms = (performance.now() - t0) / steps;
  prefix.dispose();
  return ms;
}

/** The naive design: the whole KV is past, concatenated in JS and fed back every step. */
async function naiveDecode(s: ModelSession, spec: DecoderSpec, ctx: number, steps: number): Promise<number> {
  const past = new PastKv(spec, 1);
  await past.append({ keys: randomKv(spec, ctx), values: randomKv(spec, ctx) });
  const empty = PrefixKv.empty(spec, 1);
  let token = 5;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const feeds = { ...stepFeeds([{ prefixLen: 0, pastLen: past.length, ids: [token] }], spec.padId), ...empty.feeds(spec.name), ...past.feeds(spec.name) };
    const out = await s.run({ ...feeds, image_embeds: { type: 'float32', dims: [0, spec.hidden], data: new Float32Array(0) } });
    await past.append(presentsOf(out, spec, spec.name));
    token = argmax((out.logits as TensorLike).data as Float32Array);
  }
  return (performance.now() - t0) / steps;
}

function screeningExam(spec: DecoderSpec, tiles: number, questions: number, imgContext: number): EncodedExam {
  let seed = 17;
  const rnd = (n: number) => Array.from({ length: n }, () => 100 + ((seed = (seed * 48271) % 2147483647) % 20000));
  const prefix = [1, ...rnd(40), ...new Array(256 * tiles).fill(imgContext), ...rnd(3)];
  const embeds: TensorLike = {
    type: 'float32', dims: [256 * tiles, spec.hidden],
    data: Float32Array.from({ length: 256 * tiles * spec.hidden }, (_, i) => Math.cos(i) * 0.02),
  };
  // Like VOLMO's prompts: a shared stem, the condition, a shared answer-format suffix + assistant header.
  const stem = rnd(20);
  const suffix = rnd(12);
  const qs = Array.from({ length: questions }, (_, i) => ({
    id: `q${i}`,
    ids: [...prefix, ...(i === questions - 1 ? rnd(70) : [...stem, ...rnd(6), ...suffix])],
    maxNewTokens: 1,
    candidates: i === questions - 1 ? [0, 1, 2, 3, 4].map((d) => ({ label: String(d), tokenId: 300 + d })) : [{ label: 'TRUE', tokenId: 400 }, { label: 'FALSE', tokenId: 401 }],
  }));
  return { questions: qs, imageEmbeds: embeds };
}

async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/**
 * Medians of `reps` rounds that run every variant once each, interleaved, so that load from other jobs on
 * this shared machine falls on all variants alike rather than on whichever ran during a busy spell.
 */
async function interleavedMedians(reps: number, variants: (() => Promise<number>)[]): Promise<number[]> {
  const runs: number[][] = variants.map(() => []);
  for (let r = 0; r < reps; r++) for (const [i, v] of variants.entries()) runs[i].push(await v());
  return runs.map(median);
}

/** Fastest of `n` repetitions: this machine is shared, so the minimum is the least noisy figure. */
async function best(n: number, fn: () => Promise<number>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < n; i++) min = Math.min(min, await fn());
  return min;
}

export async function runRuntimeBench(args: string[]): Promise<BenchTable[]> {
  const steps = Number(opt(args, 'steps', '16'));
  const tiles = Number(opt(args, 'tiles', '7'));
  const parts = opt(args, 'parts', 'vision,decode,exam,assess-plan,builds').split(',');
  const contexts = opt(args, 'contexts', '256,1024,2048,4096').split(',').map(Number);
  const ep = opt(args, 'ep', 'cpu') as ExecutionProvider;
  const reps = Number(opt(args, 'reps', '3'));
  const baselineMode = opt(args, 'baseline', 'auto') as BaselineMode;
  if (!['auto', 'transformers', 'none'].includes(baselineMode)) throw new Error('--baseline must be auto, transformers or none');
  const log = args.includes('--verbose') ? createLogger() : silentLogger();
  const tables: BenchTable[] = [];
  const modelParts = parts.filter((p) => p !== 'builds' && p !== 'accuracy');
  if (modelParts.length) tables.push(...(await modelTables(args, modelParts, { steps, tiles, contexts, ep, reps, baselineMode, log })));
  if (parts.includes('builds')) tables.push(await buildsPart(args, { steps, tiles, ep, log }));
  if (parts.includes('accuracy')) tables.push(await accuracyPart(args, log));
  // maxRSS is the process high-water mark in KiB (memoryUsage().rss would be the RSS at the end of the run).
  tables[0]?.notes?.push(`peak RSS of the whole bench process ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  return tables;
}

/** One eye per build variant (bench/builds.ts), on the bench model's size (--full: VOLMO-2B size). */
async function buildsPart(args: string[], o: { steps: number; tiles: number; ep: ExecutionProvider; log: Logger }): Promise<BenchTable> {
  const full = args.includes('--full');
  const layers = full ? 24 : Number(opt(args, 'layers', '2'));
  // Its own folders (not ensureModel's): other checkouts on a shared machine build bench models too.
  const stem = full ? 'volmo-builds-full' : `volmo-builds-${layers}l`;
  const snapshot = benchSnapshot(stem, layers, full ? 24 : 1);
  return buildsTable({
    variants: selectVariants(opt(args, 'builds', BUILD_VARIANTS.map((v) => v.name).join(','))),
    snapshot, stem, layers, ep: o.ep, tiles: o.tiles, steps: o.steps, log: o.log,
    accuracyLayers: Number(opt(args, 'accuracy-layers', '8')),
    accuracyTiles: Number(opt(args, 'accuracy-tiles', '1')),
    deps: { decodeMs: splitDecode, exam: (spec, tiles, img) => screeningExam(spec, tiles, 13, img) },
  });
}

/** Accuracy cost of each build variant vs fp32 alone (bench/accuracy.ts), without the timings. */
async function accuracyPart(args: string[], log: Logger): Promise<BenchTable> {
  const variants = selectVariants(opt(args, 'builds', BUILD_VARIANTS.map((v) => v.name).join(',')));
  const layers = Number(opt(args, 'accuracy-layers', '8'));
  const { rows, notes } = await measureAccuracy(variants, layers, Number(opt(args, 'accuracy-tiles', '1')), log);
  return {
    title: `Accuracy cost of each build vs the fp32 build (${layers}-layer TEST MODEL, fixture fundus photos)`,
    columns: ['build', 'logit rel. error mean', 'logit rel. error max', 'answers = fp32', 'vocabulary top-1 = fp32'],
    rows: rows.map((r) => [r.variant, r.meanRelErr.toExponential(2), r.maxRelErr.toExponential(2), `${r.agree}/${r.total}`, `${r.top1Agree}/${r.total}`]),
    notes,
  };
}

interface ModelPartOptions {
  steps: number;
  tiles: number;
  contexts: number[];
  ep: ExecutionProvider;
  reps: number;
  baselineMode: BaselineMode;
  log: Logger;
}

/** The vision, decode and exam parts on one built model. */
async function modelTables(args: string[], parts: string[], o: ModelPartOptions): Promise<BenchTable[]> {
  const { steps, tiles, contexts, ep, reps, baselineMode, log } = o;
  const { dir, snapshot, layers } = await ensureModel(args);
  const manifest = readManifest(dir);
  const spec = decoderSpecOf(manifest);
  const tables: BenchTable[] = [];
  const where = `${manifest.modelName}, ${layers} layers, ${manifest.dtype}, EP ${ep}`;
  if (parts.includes('vision')) tables.push(await visionTable(dir, manifest, ep, tiles, reps, log, where));

  const s = await openSession(join(dir, manifest.graphs.decoder.file), { executionProvider: ep, log, keepOnDevice: ['present_*'] });
  assertProvider(s, ep);
  await splitDecode(s, spec, 64, 2); // warm-up
  if (parts.includes('decode')) {
    const base = await openTransformersBaseline(baselineMode, snapshot, layers, manifest.dtype);
    const notes = [base.note];
    if (base.decoder) {
      const prompt = Array.from({ length: 16 }, (_, i) => 100 + ((i * 7919) % 20000));
      notes.push(await assertSameGreedy(base.decoder, (p, n) => runtimeGreedy(s, spec, p, n), prompt, 8));
    }
    tables.push(await decodeTable(s, spec, contexts, steps, reps, where, base.decoder, notes));
    await base.decoder?.dispose();
  }
  if (parts.includes('exam')) {
    const noReuse = !args.includes('--skip-no-reuse');
    tables.push(await examTable(s, spec, manifest.stopIds, manifest.tokens.imgContext, tiles, reps, noReuse, where));
  }
  if (parts.includes('assess-plan')) {
    tables.push(await assessPlanTable(s, spec, manifest.tokens.imgContext, tiles, Number(opt(args, 'plan-tokens', '16')), reps, where));
  }
  await s.release();
  return tables;
}

/** Vision ms per tile: the product's vision path (`embedImages`) over one image of `tiles` random tiles. */
async function visionTable(dir: string, manifest: Manifest, ep: ExecutionProvider, tiles: number, reps: number, log: Logger, where: string): Promise<BenchTable> {
  const vision = await openSession(join(dir, manifest.graphs.vision.file), { executionProvider: ep, log });
  try {
    assertProvider(vision, ep);
    const S = manifest.imageSize;
    const image = (n: number) => ({ tileCount: n, tiles: Float32Array.from({ length: n * 3 * S * S }, (_, i) => Math.sin(i) * 0.8) });
    const model = { manifest, vision };
    const never = { aborted: false };
    const one = image(1);
    const many = image(tiles);
    await embedImages(model, [one], never); // warm-up
    const oneMs = await best(reps, () => timed(() => embedImages(model, [one], never)));
    const manyMs = await best(reps, () => timed(() => embedImages(model, [many], never)));
    return {
      title: `Runtime: vision (InternViT ${manifest.vision.layers} layers + pixel shuffle + projector) (${where})`,
      columns: ['tiles per image', 'ms per image', 'ms per tile'],
      rows: [[1, oneMs, oneMs], [tiles, manyMs, manyMs / tiles]],
      notes: [`best of ${reps}; ${manifest.tokensPerTile} image tokens per tile; random pixels (the cost does not depend on them)`],
    };
  } finally {
    await vision.release();
  }
}

/** The runtime's greedy tokens for `prompt` (prefill of all but the last id, then the split decode loop). */
async function runtimeGreedy(s: ModelSession, spec: DecoderSpec, prompt: number[], n: number): Promise<number[]> {
  const prefix = await prefill(s, spec, prompt.slice(0, -1));
  const first = await firstStep(s, spec, prefix, prompt.slice(-1));
  const { tokens } = await decode(s, spec, prefix, first.past, first.logits, { maxNewTokens: n, stopIds: [] });
  prefix.dispose();
  return tokens;
}

/** transformers.js ms/token after `ctx` cached tokens (the same random KV as the runtime's loops). */
function transformersDecode(d: TransformersDecoder, spec: DecoderSpec, ctx: number, steps: number): Promise<number> {
  const kv = randomKv(spec, ctx); // randomKv's keys and values have the same content, as in the runtime's loops
  return d.decodeMs((i) => ({ key: kv[i].data as Float32Array, value: kv[i].data as Float32Array, dims: kv[i].dims }), ctx, steps);
}

async function decodeTable(
  s: ModelSession, spec: DecoderSpec, contexts: number[], steps: number, reps: number, where: string, tjs: TransformersDecoder | null, extraNotes: string[],
): Promise<BenchTable> {
  const decodeRows: (string | number)[][] = [];
  if (tjs) await transformersDecode(tjs, spec, 64, 2); // warm-up
  for (const ctx of contexts) {
    const variants = [() => splitDecode(s, spec, ctx, steps), () => naiveDecode(s, spec, ctx, steps)];
    if (tjs) variants.push(() => transformersDecode(tjs, spec, ctx, steps));
    const [split, naive, base = null] = await interleavedMedians(reps, variants);
    decodeRows.push([ctx, split, naive, base ?? '—', naive / split, base === null ? '—' : base / split]);
  }
  const prefillIds = Array.from({ length: 512 }, (_, i) => 100 + ((i * 7919) % 20000));
  const prefillMs = await timed(async () => (await prefill(s, spec, prefillIds)).dispose());

  return {
    title: `Runtime: decode ms/token by context (${where})`,
    columns: ['context', 'split KV (ms/token)', '(a) naive JS KV loop (ms/token)', '(b) transformers.js (ms/token)', 'split tok/s vs (a)', 'split tok/s vs (b)'],
    rows: decodeRows,
    notes: [
      `split: prefix KV fed read-only, only new tokens' KV returned; (a) naive: whole KV concatenated in JS and fed every step; (b) transformers.js generate() with a DynamicCache of the same context (whole KV in and out every step); ${steps} steps each, median of ${reps} interleaved rounds`,
      ...extraNotes,
      `${contexts.at(-1)} vs ${contexts[0]}: split ${((decodeRows.at(-1)![1] as number) / (decodeRows[0][1] as number)).toFixed(2)}x`,
      `prefill: ${(prefillIds.length / (prefillMs / 1000)).toFixed(0)} tokens/s (512 tokens, one run)`,
    ],
  };
}

async function examTable(
  s: ModelSession, spec: DecoderSpec, stop: readonly number[], imgContext: number, tiles: number, reps: number, withNoReuse: boolean, where: string,
): Promise<BenchTable> {
  const exam = screeningExam(spec, tiles, 13, imgContext);
  const single = { ...exam, questions: [exam.questions[0]] };
  const singleMs = await best(reps, () => timed(() => runExams(s, spec, [single], { stopIds: stop })));
  const reuseMs = await best(reps, () => timed(() => runExams(s, spec, [exam], { stopIds: stop })));
  const reuseUnbatchedMs = await best(reps, () => timed(() => runExams(s, spec, [exam], { stopIds: stop, batchRows: 1 })));
  const rows: (string | number)[][] = [
    ['single question (prefill + 1 step)', singleMs, 1],
    ['exam, prefix reuse + batched single-step', reuseMs, reuseMs / singleMs],
    ['exam, prefix reuse, one question per run', reuseUnbatchedMs, reuseUnbatchedMs / singleMs],
  ];
  if (withNoReuse) {
    const noReuseMs = await timed(() => runExams(s, spec, [exam], { stopIds: stop, prefixReuse: false, batchRows: 1 }));
    rows.push(['exam, no prefix reuse (every prompt whole)', noReuseMs, noReuseMs / singleMs]);
  }
  return {
    title: `Runtime: screening exam, 12 TRUE/FALSE + DR stage, ${tiles} tile(s) = ${exam.questions[0].ids.length - 38} prefix tokens (${where})`,
    columns: ['variant', 'ms', 'x single question'],
    rows,
    notes: [
      `target: whole exam <= 2x a single question; best of ${reps}${withNoReuse ? ' (1 run without prefix reuse)' : '; the no-reuse variant (13 whole prompts) skipped (--skip-no-reuse)'}`,
      'batched: rows sharing a prefix run together against it (broadcast); one question per run: batchRows 1',
    ],
  };
}

/**
 * Token ids of one assessment-and-plan case with the lengths of VOLMO's prompts (step 1 with a case profile
 * ~900 tokens, steps 2–5 ~120 each) after the same image prefix as the screening exam.
 */
function assessPlanCase(spec: DecoderSpec, tiles: number, imgContext: number, newTokens: number, mode: 'independent' | 'chained'): EncodedExam[] {
  const base = screeningExam(spec, tiles, 1, imgContext);
  const prefix = base.questions[0].ids.slice(0, 1 + 40 + 256 * tiles + 3);
  let seed = 29;
  const rnd = (n: number) => Array.from({ length: n }, () => 100 + ((seed = (seed * 48271) % 2147483647) % 20000));
  const steps = [900, 120, 120, 120, 120].map(rnd);
  const question = (i: number, ids: number[]) => ({ id: `step${i + 1}`, ids, maxNewTokens: newTokens });
  if (mode === 'independent') return [{ imageEmbeds: base.imageEmbeds, questions: steps.map((st, i) => question(i, [...prefix, ...st])) }];
  // Chained: step n carries steps 1..n-1 and an answer of `newTokens` tokens each as history.
  return steps.map((_, i) => ({
    imageEmbeds: base.imageEmbeds,
    questions: [question(i, [...prefix, ...steps.slice(0, i + 1).flatMap((st, j) => (j < i ? [...st, ...rnd(newTokens)] : st))])],
  }));
}

async function assessPlanTable(s: ModelSession, spec: DecoderSpec, imgContext: number, tiles: number, newTokens: number, reps: number, where: string): Promise<BenchTable> {
  const screening = screeningExam(spec, tiles, 13, imgContext);
  const run = async (exams: EncodedExam[]) => {
    let tokens = 0;
    const ms = await timed(async () => {
      for (const e of exams) tokens += (await runExams(s, spec, [e], { stopIds: [] }))[0]!.reduce((n, a) => n + a.tokens.length, 0);
    });
    return { ms, tokens };
  };
  const screeningMs = await best(reps, () => timed(() => runExams(s, spec, [screening], { stopIds: [] })));
  const rows: (string | number)[][] = [['screening exam, 12 TRUE/FALSE + DR stage (baseline)', 13, screeningMs, '—', 1]];
  for (const mode of ['independent', 'chained'] as const) {
    const exams = assessPlanCase(spec, tiles, imgContext, newTokens, mode);
    let bestRun = { ms: Infinity, tokens: 0 };
    for (let r = 0; r < reps; r++) {
      const x = await run(exams);
      if (x.ms < bestRun.ms) bestRun = x;
    }
    rows.push([`assess-plan, 5 steps ${mode}`, bestRun.tokens, bestRun.ms, bestRun.ms / bestRun.tokens, bestRun.ms / screeningMs]);
  }
  return {
    title: `Runtime: assessment-and-plan second stage, one case, ${tiles} tile(s), ${newTokens} new tokens per step (${where})`,
    columns: ['variant', 'tokens generated', 'ms per case', 'ms per generated token (incl. prefill)', 'x screening exam'],
    rows,
    notes: [
      `best of ${reps}; random weights never emit the stop token, so every step generates exactly ${newTokens} tokens (VOLMO's budget is 1,024 per step; scale the decode share linearly)`,
      'independent: one exam, the image prefix prefilled once for the five steps; chained (default): five exams, each re-prefilling the image prefix and the earlier turns (the engine keeps no prefix across exams)',
    ],
  };
}
