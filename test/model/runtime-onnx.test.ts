/**
 * The runtime on real ONNX graphs: the builder's tiny model (seeded random weights, real tensor layout).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as ort from 'onnxruntime-node';
import { createLogger, silentLogger } from '../../src/log.js';
import { writeTinySnapshot } from '../../src/model/tiny.js';
import { buildModel } from '../../src/model/build/build-model.js';
import { openSession } from '../../src/model/runtime/onnx-session.js';
import { openModelDir, type LoadedModel } from '../../src/model/runtime/model-dir.js';
import { argmax, candidateProbabilities, classifyBatch, decode, firstStep, generate, prefill } from '../../src/model/runtime/generate.js';
import { PrefixKv } from '../../src/model/runtime/kv.js';
import { runExams } from '../../src/model/runtime/exam.js';
import { createEngine } from '../../src/model/runtime/engine.js';
import { ModelLoadError } from '../../src/model/runtime/load-error.js';
import { InferenceCancelledError } from '../../src/model/runtime/cancel.js';
import type { ExamInput } from '../../src/model/runtime/types.js';
import type { FeedValue, TensorLike } from '../../src/model/runtime/tensor.js';

let root: string;
let modelDir: string;
let model: LoadedModel;
const opts = { executionProvider: 'cpu' as const, threads: 1, verifyChecksums: true, log: silentLogger() };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volmo-rt-'));
  writeTinySnapshot(join(root, 'snap'));
  modelDir = join(root, 'model');
  await buildModel(join(root, 'snap'), modelDir);
  model = await openModelDir(modelDir, opts);
});
afterAll(async () => {
  await model?.decoder.release();
  await model?.vision.release();
  rmSync(root, { recursive: true, force: true });
});

/** Naive reference: re-run the whole sequence every step, no cache at all. */
async function naiveGreedy(ids: number[], steps: number, embeds?: Parameters<typeof firstStep>[4]): Promise<{ tokens: number[]; first: Float32Array }> {
  const seq = [...ids];
  const tokens: number[] = [];
  let first: Float32Array | undefined;
  for (let i = 0; i < steps; i++) {
    const r = await firstStep(model.decoder, model.spec, PrefixKv.empty(model.spec, 1), seq, embeds);
    r.past.dispose();
    first ??= r.logits.slice();
    tokens.push(argmax(r.logits));
    seq.push(tokens.at(-1)!);
  }
  return { tokens, first: first! };
}

const randomTiles = (n: number, seed: number) => {
  const a = new Float32Array(n * 3 * 448 * 448);
  let s = seed;
  for (let i = 0; i < a.length; i++) a[i] = (((s = (s * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24) * 4 - 2;
  return { tiles: a, tileCount: n };
};

describe('runtime on the tiny ONNX model', () => {
  it('split-KV prefix reuse gives the same greedy tokens as re-running the whole sequence (48 steps)', async () => {
    const prefixIds = model.tokenizer.encode('<|im_start|>system\nYou are an ophthalmologist.<|im_end|><|im_start|>user\n');
    const prefix = await prefill(model.decoder, model.spec, prefixIds);
    for (const q of ['Describe the optic disc.', 'Is there drusen?']) {
      const qIds = model.tokenizer.encode(`${q}<|im_end|><|im_start|>assistant\n`, { addBos: false });
      const split = await generate(model.decoder, model.spec, prefix, qIds, { maxNewTokens: 48, stopIds: [] });
      const naive = await naiveGreedy([...prefixIds, ...qIds], 48);
      expect(split.tokens).toEqual(naive.tokens);
      expect(split.stopReason).toBe('max_new_tokens');
    }
    prefix.dispose();
  });

  it('reuses an image prefix: exam answers equal independent runs; candidate probabilities match the full softmax', async () => {
    const exam: ExamInput = {
      images: [randomTiles(1, 7)],
      questions: [
        { id: 'amd', text: 'Does this image show AMD? Answer in format: TRUE or FALSE.', answer: { kind: 'choice', candidates: ['TRUE', 'FALSE'] } },
        { id: 'dr', text: 'Rate DR 0 to 4.', answer: { kind: 'choice', candidates: ['0', '1', '2', '3', '4'] } },
        { id: 'desc', text: 'What is shown?', answer: { kind: 'text', maxNewTokens: 12 } },
      ],
    };
    const backend = await import('../../src/model/runtime/onnx-backend.js');
    const b = await backend.loadBackend({ ...opts, modelDir });
    const [res] = await b.runBatch([exam], { aborted: false });
    await b.close();
    if (!res.ok) throw res.error;
    const [amd, dr, desc] = res.answers;
    expect(amd.stopReason).toBe('single_step');
    expect(['TRUE', 'FALSE']).toContain(amd.choice);
    // Reference for the DR question: its full prompt run alone, without any cache.
    const { buildVolmoPrompt } = await import('../../src/model/prompt.js');
    const full = (text: string) => model.tokenizer.encode(buildVolmoPrompt({ template: model.template, systemMessage: model.manifest.systemMessage, question: text, tileCounts: [1] }).text);
    const tiles = randomTiles(1, 7);
    const vis = await model.vision.run({ pixel_values: { type: 'float32', dims: [1, 3, 448, 448], data: tiles.tiles } });
    const emb = vis.image_embeds as { type: 'float32'; dims: number[]; data: Float32Array };
    const embeds = { type: 'float32' as const, dims: [emb.dims[1], emb.dims[2]], data: emb.data };
    const drRef = await naiveGreedy(full('Rate DR 0 to 4.'), 1, embeds);
    const probs = candidateProbabilities(drRef.first, dr.candidates!.map((c) => c.tokenId));
    dr.candidates!.forEach((c, i) => expect(c.probability).toBeCloseTo(probs[i], 5));
    expect(dr.candidates!.reduce((s, c) => s + c.probability, 0)).toBeLessThanOrEqual(1 + 1e-6);
    const descRef = await naiveGreedy(full('What is shown?'), desc.tokenIds.length, embeds);
    expect(desc.tokenIds).toEqual(descRef.tokens);
  });

  it('batched single-step runs with left padding match one-by-one logits', async () => {
    const p1 = await prefill(model.decoder, model.spec, model.tokenizer.encode('short prefix'));
    const p2 = await prefill(model.decoder, model.spec, model.tokenizer.encode('a much longer prefix with more tokens in it'));
    const rows = [
      { prefix: p1, ids: model.tokenizer.encode('question one?', { addBos: false }) },
      { prefix: p2, ids: model.tokenizer.encode('two', { addBos: false }) },
      { prefix: p1, ids: model.tokenizer.encode('and a third, longer question?', { addBos: false }) },
    ];
    const batched = await classifyBatch(model.decoder, model.spec, rows);
    for (const [i, r] of rows.entries()) {
      const one = await firstStep(model.decoder, model.spec, r.prefix, r.ids);
      const maxErr = Math.max(...one.logits.map((v, j) => Math.abs(v - batched[i][j])));
      expect(maxErr).toBeLessThan(1e-3);
      expect(argmax(batched[i])).toBe(argmax(one.logits));
    }
  });

  it('rows sharing one prefix are fed it once (batch 1, broadcast over the rows) and match one-by-one logits', async () => {
    const prefix = await prefill(model.decoder, model.spec, model.tokenizer.encode('the shared exam prefix'));
    const rows = ['TRUE or FALSE?', 'a longer second question, TRUE or FALSE?', 'third'].map((q) => ({
      prefix, ids: model.tokenizer.encode(q, { addBos: false }),
    }));
    const prefixBatches: number[] = [];
    const spy = { ...model.decoder, run: (feeds: Record<string, FeedValue>) => {
      prefixBatches.push((feeds['prefix_key.0'] as TensorLike).dims[0]);
      return model.decoder.run(feeds);
    } };
    const batched = await classifyBatch(spy, model.spec, rows);
    expect(prefixBatches).toEqual([1]);
    for (const [i, r] of rows.entries()) {
      const one = await firstStep(model.decoder, model.spec, r.prefix, r.ids);
      const maxErr = Math.max(...one.logits.map((v, j) => Math.abs(v - batched[i][j])));
      expect(maxErr).toBeLessThan(1e-3);
      expect(argmax(batched[i])).toBe(argmax(one.logits));
    }
    prefix.dispose();
  });

  it('runExams with and without prefix reuse agree on the real graph', async () => {
    const ids = (q: string) => model.tokenizer.encode(`<|im_start|>system\nsys<|im_end|><|im_start|>user\n${q}<|im_end|><|im_start|>assistant\n`);
    const exams = [{ questions: [
      { id: 'a', ids: ids('first?'), maxNewTokens: 1, candidates: [{ label: 'x', tokenId: 5 }, { label: 'y', tokenId: 9 }] },
      { id: 'b', ids: ids('second question'), maxNewTokens: 10 },
      { id: 'c', ids: ids('second question, longer'), maxNewTokens: 1, candidates: [{ label: 'x', tokenId: 5 }, { label: 'y', tokenId: 9 }] },
      { id: 'd', ids: ids('second question again'), maxNewTokens: 6 },
    ] }];
    const a = await runExams(model.decoder, model.spec, exams, { stopIds: model.manifest.stopIds });
    const b = await runExams(model.decoder, model.spec, exams, { stopIds: model.manifest.stopIds, prefixReuse: false });
    expect(a[0][1].tokens).toEqual(b[0][1].tokens);
    expect(a[0][3].tokens).toEqual(b[0][3].tokens);
    for (const k of [0, 2]) a[0][k].candidates!.forEach((c, i) => expect(c.probability).toBeCloseTo(b[0][k].candidates![i].probability, 5));
  });

  it('abort during decoding stops and frees the past KV', async () => {
    const prefix = await prefill(model.decoder, model.spec, model.tokenizer.encode('hello'));
    const first = await firstStep(model.decoder, model.spec, prefix, [5, 6, 7]);
    const ac = new AbortController();
    let runs = 0;
    const counting = { ...model.decoder, run: async (f: Parameters<typeof model.decoder.run>[0]) => (++runs === 3 && ac.abort(), model.decoder.run(f)) };
    await expect(decode(counting, model.spec, prefix, first.past, first.logits, { maxNewTokens: 500, stopIds: [], signal: ac.signal }))
      .rejects.toBeInstanceOf(InferenceCancelledError);
    expect(runs).toBe(3);
    expect(first.past.length).toBe(0);
  });

  it('falls back to CPU with a log line when CUDA or TensorRT providers are not installed', async () => {
    for (const ep of ['cuda', 'tensorrt'] as const) {
      const lines: string[] = [];
      const log = createLogger({ destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });
      const s = await openSession(join(modelDir, 'decoder.onnx'), { executionProvider: ep, log });
      expect(s.executionProvider).toBe('cpu');
      const rec = JSON.parse(lines[0]);
      expect(rec).toMatchObject({ level: 'warn', requested: ep, chosen: 'cpu' });
      expect(rec.reason).toMatch(/not installed/);
      await s.release();
    }
  });

  it('reports missing files, checksum mismatches and corrupt graphs as typed load errors', async () => {
    const copy = (name: string) => {
      const d = join(root, name);
      cpSync(modelDir, d, { recursive: true });
      return d;
    };
    const missing = copy('missing');
    rmSync(join(missing, 'tokenizer.json'));
    await expect(openModelDir(missing, opts)).rejects.toMatchObject({ reason: 'missing_file', file: 'tokenizer.json' });
    const tampered = copy('tampered');
    const dec = readFileSync(join(tampered, 'decoder.onnx'));
    dec[dec.length - 10] ^= 0xff;
    writeFileSync(join(tampered, 'decoder.onnx'), dec);
    await expect(openModelDir(tampered, opts)).rejects.toMatchObject({ reason: 'checksum_mismatch', file: 'decoder.onnx', code: 'model_unavailable' });
    const corrupt = copy('corrupt');
    writeFileSync(join(corrupt, 'decoder.onnx'), Buffer.alloc(dec.length, 7));
    const err = await openModelDir(corrupt, { ...opts, verifyChecksums: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err).toMatchObject({ reason: 'corrupt_graph' });
    await expect(openModelDir(join(root, 'nowhere'), opts)).rejects.toMatchObject({ reason: 'missing_file', file: 'manifest.json' });
  });

  it('the engine loads the real model in a worker, answers, and a bad model directory rejects without crashing', async () => {
    const engine = await createEngine({ modelDir, log: silentLogger(), workers: 1 });
    try {
      expect(engine.info).toMatchObject({ random: true, executionProvider: 'cpu', dtype: 'fp32' });
      expect(engine.info.manifestSha256).toMatch(/^[0-9a-f]{64}$/);
      const a = await engine.generate({ images: [], prompt: 'Hello', maxNewTokens: 5 });
      expect(a.tokenIds.length).toBeGreaterThan(0);
      expect(a.tokenIds.length).toBeLessThanOrEqual(5);
      // A request over its time budget is cancelled inside the worker's decode loop; the worker is free again.
      const t0 = Date.now();
      await expect(engine.generate({ images: [], prompt: 'Tell me everything', maxNewTokens: 1_000_000 }, { timeoutMs: 300 }))
        .rejects.toMatchObject({ code: 'timeout', reason: 'timeout' });
      expect(Date.now() - t0).toBeLessThan(2000);
      const again = await engine.generate({ images: [], prompt: 'Hello', maxNewTokens: 5 }, { timeoutMs: 5000 });
      expect(again.tokenIds).toEqual(a.tokenIds);
    } finally {
      await engine.close();
    }
    const err = await createEngine({ modelDir: join(root, 'nowhere'), log: silentLogger() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ModelLoadError', reason: 'missing_file' });
  });
});

describe('chunked prefill', () => {
  it('gives the same prefix KV behaviour as a one-run prefill, image rows split across chunks', async () => {
    const img = model.manifest.tokens.imgContext;
    const ids = [1, 5, 6, model.manifest.tokens.imgStart, ...new Array(40).fill(img), model.manifest.tokens.imgEnd, 9, 10, 11];
    const H = model.manifest.llm.hidden;
    const embeds = { type: 'float32' as const, dims: [40, H], data: Float32Array.from({ length: 40 * H }, (_, i) => Math.sin(i)) };
    const whole = await prefill(model.decoder, model.spec, ids, embeds);
    const chunked = await prefill(model.decoder, model.spec, ids, embeds, { chunk: 16 });
    expect(chunked.length).toBe(whole.length);
    const q = [20, 21, 22];
    const a = await generate(model.decoder, model.spec, whole, q, { maxNewTokens: 16, stopIds: [] });
    const b = await generate(model.decoder, model.spec, chunked, q, { maxNewTokens: 16, stopIds: [] });
    expect(b.tokens).toEqual(a.tokens);
    const la = (await firstStep(model.decoder, model.spec, whole, q)).logits;
    const lb = (await firstStep(model.decoder, model.spec, chunked, q)).logits;
    expect(Math.max(...la.map((v, i) => Math.abs(v - lb[i])))).toBeLessThan(1e-4);
  });
});

describe('encoded images', () => {
  it('tiles a JPEG with the manifest settings and isolates a bad image to its own request', async () => {
    const jpeg = new Uint8Array(readFileSync(new URL('../../fixtures/images/diabetic-fundus-od.jpg', import.meta.url)));
    const backend = await import('../../src/model/runtime/onnx-backend.js');
    const b = await backend.loadBackend({ ...opts, modelDir });
    const q = { id: 'dr', text: 'Does this image show diabetic retinopathy? Answer in format: TRUE or FALSE.', answer: { kind: 'choice' as const, candidates: ['TRUE', 'FALSE'] } };
    const [good, small, bad] = await b.runBatch(
      [{ images: [jpeg], questions: [q] }, { images: [jpeg], maxTiles: 1, questions: [q] }, { images: [new Uint8Array([1, 2, 3, 4])], questions: [q] }],
      { aborted: false },
    );
    await b.close();
    if (!good.ok || !small.ok) throw new Error('expected answers');
    expect(['TRUE', 'FALSE']).toContain(good.answers[0].choice);
    // 6 tiles max + thumbnail vs a single tile: different prompts, so (almost surely) different probabilities.
    expect(good.answers[0].candidates![0].probability).not.toBe(small.answers[0].candidates![0].probability);
    expect(bad.ok).toBe(false);
    expect((bad as { error: { code: string } }).error.code).toMatch(/bad_request|unsupported_media_type/);
  });
});

/** True (the test skipped) when WebGPU fell back to CPU here; an error instead where VOLMO_REQUIRE_WEBGPU=1 (CI with lavapipe). */
function fellBack(gpu: LoadedModel, ctx: { skip(): void }): boolean {
  if (gpu.decoder.executionProvider === 'webgpu') return false;
  if (process.env.VOLMO_REQUIRE_WEBGPU === '1') throw new Error('VOLMO_REQUIRE_WEBGPU=1 but WebGPU fell back to CPU');
  ctx.skip();
  return true;
}

describe('WebGPU execution provider (runs where a Vulkan adapter exists; CI installs Mesa lavapipe)', () => {
  it('gives the same greedy tokens as CPU, with the prefix KV kept on the device', async (ctx) => {
    const gpu = await openModelDir(modelDir, { ...opts, executionProvider: 'webgpu' });
    try {
      if (fellBack(gpu, ctx)) return;
      const ids = model.tokenizer.encode('<|im_start|>system\nYou are an ophthalmologist.<|im_end|><|im_start|>user\n');
      const q = model.tokenizer.encode('Describe the macula.<|im_end|><|im_start|>assistant\n', { addBos: false });
      const run = async (m: LoadedModel) => {
        const prefix = await prefill(m.decoder, m.spec, ids);
        const out = await generate(m.decoder, m.spec, prefix, q, { maxNewTokens: 32, stopIds: [] });
        prefix.dispose();
        return out.tokens;
      };
      expect(await run(gpu)).toEqual(await run(model));
      // A whole exam (vision on the GPU, device-resident image prefix, choices and text) matches CPU.
      const { loadBackend } = await import('../../src/model/runtime/onnx-backend.js');
      const exam: ExamInput = {
        images: [randomTiles(1, 3)],
        questions: [
          { id: 'c', text: 'Glaucoma? Answer in format: TRUE or FALSE.', answer: { kind: 'choice', candidates: ['TRUE', 'FALSE'] } },
          { id: 't', text: 'What is shown?', answer: { kind: 'text', maxNewTokens: 8 } },
          // a second choice row: both run in one run against the device-resident prefix (broadcast)
          { id: 'c2', text: 'Cataract? Answer in format: TRUE or FALSE.', answer: { kind: 'choice', candidates: ['TRUE', 'FALSE'] } },
        ],
      };
      const answers = async (ep: 'cpu' | 'webgpu') => {
        const b = await loadBackend({ ...opts, executionProvider: ep, modelDir });
        const [r] = await b.runBatch([exam], { aborted: false });
        await b.close();
        if (!r.ok) throw r.error;
        return r.answers;
      };
      const [onGpu, onCpu] = [await answers('webgpu'), await answers('cpu')];
      expect(onGpu[1].tokenIds).toEqual(onCpu[1].tokenIds);
      for (const k of [0, 2]) onGpu[k].candidates!.forEach((c, i) => expect(c.probability).toBeCloseTo(onCpu[k].candidates![i].probability, 3));
    } finally {
      await gpu.decoder.release();
      await gpu.vision.release();
    }
  }, 240_000); // software Vulkan is slow on a shared 2-core machine (60 s was exceeded under load)

  it('opens the decoder graph once (its weights in device memory once), copying host outputs out through a copy graph', async (ctx) => {
    const create = vi.spyOn(ort.InferenceSession, 'create');
    try {
      const gpu = await openModelDir(modelDir, { ...opts, executionProvider: 'webgpu' });
      try {
        if (fellBack(gpu, ctx)) return;
        const ids = model.tokenizer.encode('<|im_start|>system\nYou are an ophthalmologist.<|im_end|>');
        const prefix = await prefill(gpu.decoder, gpu.spec, ids);
        expect(prefix.onDevice).toBe(true);
        const out = await generate(gpu.decoder, gpu.spec, prefix, [5, 6], { maxNewTokens: 4, stopIds: [] });
        prefix.dispose();
        const cpuPrefix = await prefill(model.decoder, model.spec, ids);
        expect(out.tokens).toEqual((await generate(model.decoder, model.spec, cpuPrefix, [5, 6], { maxNewTokens: 4, stopIds: [] })).tokens);
        cpuPrefix.dispose();
        const decoderOpens = create.mock.calls.filter((c) => String(c[0] as unknown).endsWith('decoder.onnx'));
        expect(decoderOpens).toHaveLength(1);
      } finally {
        await gpu.decoder.release();
        await gpu.vision.release();
      }
    } finally {
      create.mockRestore();
    }
  }, 240_000);
});

describe('bad exam input', () => {
  it('answers with typed bad_request errors per request', async () => {
    const { loadBackend } = await import('../../src/model/runtime/onnx-backend.js');
    const b = await loadBackend({ ...opts, modelDir });
    const choice = (candidates: string[]) => ({ id: 'q', text: 'TRUE or FALSE?', answer: { kind: 'choice' as const, candidates } });
    const results = await b.runBatch(
      [
        { images: [], questions: [] },
        { images: [], questions: [choice(['TRUE', 'TRUE'])] },
        { images: [], questions: [choice([])] },
        { images: [{ tiles: new Float32Array(10), tileCount: 1 }], questions: [choice(['TRUE', 'FALSE'])] },
        { images: [], questions: [choice(['TRUE', 'FALSE'])] },
      ],
      { aborted: false },
    );
    await b.close();
    const errors = results.map((r) => (r.ok ? null : (r.error as { code: string; message: string })));
    expect(errors[0]).toMatchObject({ code: 'bad_request', message: expect.stringMatching(/at least one question/) });
    expect(errors[1]).toMatchObject({ code: 'bad_request', message: expect.stringMatching(/different tokens/) });
    expect(errors[2]).toMatchObject({ code: 'bad_request', message: expect.stringMatching(/needs candidates/) });
    expect(errors[3]).toMatchObject({ code: 'bad_request', message: expect.stringMatching(/expected 1×3×448×448/) });
    expect(results[4].ok).toBe(true);
  });
});

describe('positions past max_position_embeddings (dynamic NTK rope)', () => {
  it('refuses a prompt past the limit per request, before its images are embedded, and stops decoding at the limit', async () => {
    const { loadBackend } = await import('../../src/model/runtime/onnx-backend.js');
    const { buildVolmoPrompt } = await import('../../src/model/prompt.js');
    const text = 'What is shown?';
    const n = model.tokenizer.encode(buildVolmoPrompt({ template: model.template, systemMessage: model.manifest.systemMessage, question: text, tileCounts: [] }).text).length;
    const dir = join(root, 'short-rope');
    cpSync(modelDir, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    m.llm.maxPositions = n + 4;
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    const b = await loadBackend({ ...opts, modelDir: dir });
    const q = { id: 'q', text, answer: { kind: 'text' as const, maxNewTokens: 20 } };
    // the tiles are malformed: had they reached the vision graph, the error would name their size
    const [long, short] = await b.runBatch([{ images: [{ tiles: new Float32Array(10), tileCount: 1 }], questions: [q] }, { images: [], questions: [q] }], { aborted: false });
    await b.close();
    expect(long.ok).toBe(false);
    expect((long as { error: unknown }).error).toMatchObject({ code: 'bad_request', message: expect.stringMatching(new RegExp(`max_position_embeddings = ${n + 4}`)) });
    if (!short.ok) throw short.error;
    // new tokens 1-4 run at positions n..n+3; the 5th is returned, running it would need position n+4
    expect(short.answers[0]).toMatchObject({ stopReason: 'max_positions' });
    expect(short.answers[0].tokenIds).toHaveLength(5);
  });
});

describe('quantised builds', () => {
  it.each(['fp16', 'int4'] as const)('%s: split-KV prefix reuse gives the same greedy tokens as re-running the whole sequence', async (dtype) => {
    const dir = join(root, `model-${dtype}`);
    await buildModel(join(root, 'snap'), dir, { dtype });
    const m = await openModelDir(dir, opts);
    try {
      const prefixIds = m.tokenizer.encode('<|im_start|>system\nsys<|im_end|><|im_start|>user\n');
      const q = m.tokenizer.encode('Any drusen?<|im_end|><|im_start|>assistant\n', { addBos: false });
      const prefix = await prefill(m.decoder, m.spec, prefixIds);
      const split = await generate(m.decoder, m.spec, prefix, q, { maxNewTokens: 24, stopIds: [] });
      const seq = [...prefixIds, ...q];
      for (const t of split.tokens) {
        const r = await firstStep(m.decoder, m.spec, PrefixKv.empty(m.spec, 1), seq);
        r.past.dispose();
        expect(argmax(r.logits)).toBe(t);
        seq.push(t);
      }
    } finally {
      await m.decoder.release();
      await m.vision.release();
    }
  });
});
