/**
 * Baseline (b) of the runtime bench: the decoder exported as a Llama-shaped ONNX for transformers.js
 * (bench/transformers-baseline). The export runs everywhere; the transformers.js comparison only where the
 * bench-local transformers.js is installed (it is not a project dependency: `npm run bench runtime --
 * --baseline=transformers` installs it once into bench/transformers-baseline/node_modules).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportLlamaOnnx, LLAMA_ONNX, type LlamaExport } from '../../bench/transformers-baseline/llama-export.js';
import { loadTransformers, transformersInstalled, TransformersDecoder } from '../../bench/transformers-baseline/baseline.js';
import { silentLogger } from '../../src/log.js';
import { decoderSpecOf } from '../../src/model/runtime/model-dir.js';
import { openSession, type ModelSession } from '../../src/model/runtime/onnx-session.js';
import { decode, firstStep, prefill, type DecoderSpec } from '../../src/model/runtime/generate.js';
import { buildTiny, type TinyModel } from './model-harness.js';

let tiny: TinyModel;
let exported: LlamaExport;
let ours: ModelSession;
let spec: DecoderSpec;

beforeAll(async () => {
  tiny = await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-llama-')) });
  exported = exportLlamaOnnx(tiny.snapDir, join(tiny.root, 'llama'));
  spec = decoderSpecOf(tiny.manifest);
  ours = await openSession(join(tiny.outDir, tiny.manifest.graphs.decoder.file), { executionProvider: 'cpu', threads: 1, log: silentLogger() });
});
afterAll(async () => {
  await ours?.release();
  if (tiny) rmSync(tiny.root, { recursive: true, force: true });
});

async function runtimeGreedy(prompt: number[], n: number): Promise<number[]> {
  const prefix = await prefill(ours, spec, prompt.slice(0, -1));
  const first = await firstStep(ours, spec, prefix, prompt.slice(-1));
  const { tokens } = await decode(ours, spec, prefix, first.past, first.logits, { maxNewTokens: n, stopIds: [] });
  prefix.dispose();
  return tokens;
}

const PROMPTS = [
  [1, 30, 31, 32, 40, 41, 50, 60, 70, 80],
  [1, 200, 7, 7, 300, 12],
];

describe('Llama-shaped export of the decoder (transformers.js baseline)', () => {
  it('has the decoder-only I/O transformers.js feeds and reproduces the runtime greedy tokens through a plain past/present loop', async () => {
    const s = await ort.InferenceSession.create(join(exported.dir, LLAMA_ONNX));
    const L = exported.llm.layers;
    const kvNames = (p: string) => Array.from({ length: L }, (_, i) => [`${p}.${i}.key`, `${p}.${i}.value`]).flat();
    expect([...s.inputNames].sort()).toEqual(['attention_mask', 'input_ids', 'position_ids', ...kvNames('past_key_values')].sort());
    expect([...s.outputNames]).toEqual(['logits', ...kvNames('present')]);

    const { kvHeads, headDim, vocab } = exported.llm;
    const i64 = (a: number[]) => new ort.Tensor('int64', BigInt64Array.from(a.map(BigInt)), [1, a.length]);
    const prompt = PROMPTS[0];
    let past: Record<string, ort.Tensor> = {};
    for (const n of kvNames('past_key_values')) past[n] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
    let ids = prompt;
    let len = 0;
    const tokens: number[] = [];
    for (let step = 0; step < 12; step++) {
      const out = await s.run({ input_ids: i64(ids), attention_mask: i64(new Array(len + ids.length).fill(1)), position_ids: i64(ids.map((_, i) => len + i)), ...past });
      expect(out.logits.dims).toEqual([1, 1, vocab]);
      expect(out['present.0.key'].dims).toEqual([1, kvHeads, len + ids.length, headDim]);
      const logits = out.logits.data as Float32Array;
      tokens.push(logits.indexOf(Math.max(...logits)));
      len += ids.length;
      ids = [tokens.at(-1)!];
      past = Object.fromEntries(kvNames('present').map((n) => [n.replace('present', 'past_key_values'), out[n]]));
    }
    await s.release();
    expect(tokens).toEqual(await runtimeGreedy(prompt, 12));
  });

  it.skipIf(!transformersInstalled())(
    'transformers.js greedy tokens equal the runtime greedy tokens (SKIPPED unless the bench-local transformers.js is installed in bench/transformers-baseline/node_modules)',
    async () => {
      const t = await loadTransformers({ install: false });
      const d = await TransformersDecoder.open(t!, exported.dir, exported.llm.layers);
      try {
        for (const prompt of PROMPTS) {
          const theirs = await d.greedy(prompt, 32);
          expect(theirs).toHaveLength(32);
          expect(theirs).toEqual(await runtimeGreedy(prompt, 32));
        }
      } finally {
        await d.dispose();
      }
    },
  );
});
