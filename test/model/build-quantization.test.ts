/**
 * Build options beyond the weight dtype (issue 12): int8 activations for MatMulNBits (`accuracy_level` 4)
 * and a quantised vision encoder (int4 MatMulNBits or int8 DynamicQuantizeMatMul), recorded in the manifest.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as ort from 'onnxruntime-node';
import { buildModel } from '../../src/model/build/build-model.js';
import { LinearEmitter } from '../../src/model/build/linear.js';
import { defaultQuantization, graphLinear, resolveQuantization } from '../../src/model/build/quant-options.js';
import { dequantizeInt8, quantizeInt8 } from '../../src/model/build/quantize.js';
import { runModelCli } from '../../src/model/cli.js';
import { readManifest } from '../../src/model/manifest.js';
import { GraphBuilder } from '../../src/model/onnx/graph-builder.js';
import { DataType } from '../../src/model/onnx/onnx-proto.js';
import { emptyKv, promptIds, randomTiles, relErr, runDecoder, buildTiny, type TinyModel } from './model-harness.js';

describe('int8 per-channel quantisation', () => {
  it('stores W^T as int8 with one scale per output and dequantises within half a step', () => {
    const w = Float32Array.from({ length: 3 * 5 }, (_, i) => Math.sin(i) * (1 + (i % 4)));
    const q = quantizeInt8(w, 3, 5);
    expect(q.values.length).toBe(15);
    expect(q.scales.length).toBe(3);
    const back = dequantizeInt8(q);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 5; c++) expect(Math.abs(back[r * 5 + c] - w[r * 5 + c])).toBeLessThanOrEqual(q.scales[r] / 2 + 1e-6);
    // [K,N] layout: element (k=1, n=2) holds W[2][1]; the row's absmax maps to ±63 (7-bit range by default)
    expect(q.values[1 * 3 + 2]).toBe(Math.round(w[2 * 5 + 1] / q.scales[2]));
    const amaxRow0 = Math.max(...Array.from(w.subarray(0, 5), Math.abs));
    expect(Math.max(...Array.from({ length: 5 }, (_, c) => Math.abs(q.values[c * 3])))).toBe(63);
    expect(q.scales[0]).toBeCloseTo(amaxRow0 / 63, 7);
    expect(Math.max(...Array.from(quantizeInt8(w, 3, 5, 127).values, Math.abs))).toBe(127);
  });
});

async function runLinear(emit: (g: GraphBuilder, x: string) => string, xs: Float32Array, rows: number, k: number, n: number): Promise<Float32Array> {
  const dir = mkdtempSync(join(tmpdir(), 'volmo-lin-'));
  try {
    const g = new GraphBuilder('lin');
    const x = g.input('x', DataType.FLOAT, [rows, k]);
    g.output('y', DataType.FLOAT, [rows, n], emit(g, x));
    g.save(join(dir, 'm.onnx'), [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }]);
    const s = await ort.InferenceSession.create(join(dir, 'm.onnx'));
    const y = (await s.run({ x: new ort.Tensor('float32', xs, [rows, k]) })).y.data as Float32Array;
    await s.release();
    return y;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function matmulT(xs: Float32Array, w: Float32Array, rows: number, k: number, n: number): Float32Array {
  const y = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) for (let c = 0; c < k; c++) y[r * n + j] += xs[r * k + c] * w[j * k + c];
  return y;
}

describe('quantised Linear layers run in onnxruntime', () => {
  const K = 64;
  const N = 5;
  const w = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i * 0.37) * (1 + (i % 5)));
  const xs = Float32Array.from({ length: 3 * K }, (_, i) => Math.sin(i));

  it('int8 (DynamicQuantizeMatMul) is x @ dequant(W)^T up to the activations\' uint8 step', async () => {
    const y = await runLinear((g, x) => new LinearEmitter(g, 'int8').linear(x, 'lin', w, N, K), xs, 3, K, N);
    const want = matmulT(xs, dequantizeInt8(quantizeInt8(w, N, K)), 3, K, N);
    // Full-range (127) weights saturate onnxruntime's u8 x s8 int16 pair sums on CPUs without VNNI.
    expect(relErr(y, want)).toBeLessThan(0.05);
    expect(relErr(y, want)).toBeGreaterThan(0); // the activations are quantised: not the fp32 product
  });

  it('int4 with accuracyLevel 4 writes accuracy_level on MatMulNBits and stays close to fp32 activations', async () => {
    const plain = await runLinear((g, x) => new LinearEmitter(g, 'int4').linear(x, 'lin', w, N, K), xs, 3, K, N);
    const a8 = await runLinear((g, x) => new LinearEmitter(g, 'int4', { accuracyLevel: 4 }).linear(x, 'lin', w, N, K), xs, 3, K, N);
    expect(relErr(a8, plain)).toBeLessThan(0.02);
    const g = new GraphBuilder('attrs');
    const x = g.input('x', DataType.FLOAT, [1, K]);
    new LinearEmitter(g, 'int4', { accuracyLevel: 4 }).linear(x, 'lin', w, N, K);
    const node = g.nodes.find((nd) => nd.opType === 'MatMulNBits');
    expect(node?.attributes.accuracy_level).toBeDefined();
  });
});

describe('build options: --activations and --vision', () => {
  it('defaults reproduce the earlier builds', () => {
    expect(defaultQuantization('int4')).toEqual({ activations: 'fp32', vision: 'fp16' });
    expect(defaultQuantization('fp32')).toEqual({ activations: 'fp32', vision: 'fp32' });
    expect(resolveQuantization('fp16')).toEqual({ activations: 'fp32', vision: 'fp16' });
  });

  it('refuses values it does not know and int8 activations without an int4 layer, naming what is allowed', () => {
    expect(() => resolveQuantization('int4', { activations: 'int4' })).toThrow(/--activations must be fp32 or int8/);
    expect(() => resolveQuantization('int4', { vision: 'bf16' })).toThrow(/--vision must be fp32, fp16, int4, int8/);
    expect(() => resolveQuantization('fp32', { activations: 'int8' })).toThrow(/use it with --dtype int4 or --vision int4/);
    expect(() => resolveQuantization('fp16', { activations: 'int8', vision: 'int8' })).toThrow(RangeError);
    expect(resolveQuantization('fp16', { activations: 'int8', vision: 'int4' })).toEqual({ activations: 'int8', vision: 'int4' });
  });

  it('maps the choice to each graph: accuracy level 4 only on int4 layers', () => {
    const q = resolveQuantization('int4', { activations: 'int8', vision: 'int8' });
    expect(graphLinear(q, 'decoder', 'int4')).toEqual({ dtype: 'int4', opts: { accuracyLevel: 4 } });
    expect(graphLinear(q, 'vision', 'int4')).toEqual({ dtype: 'int8', opts: {} });
    expect(graphLinear(resolveQuantization('int4'), 'decoder', 'int4')).toEqual({ dtype: 'int4', opts: {} });
  });
});

describe('quantised builds of the tiny model', () => {
  let base: TinyModel;
  const measured: Record<string, number> = {};
  beforeAll(async () => {
    base = await buildTiny({ seed: 5 });
  });
  afterAll(() => {
    rmSync(base.root, { recursive: true, force: true });
    console.log('quantised tiny builds vs fp32 (relative error):', measured);
  });

  async function outputsOf(dir: string) {
    const m = readManifest(dir);
    const vision = await ort.InferenceSession.create(join(dir, 'vision.onnx'));
    const decoder = await ort.InferenceSession.create(join(dir, 'decoder.onnx'));
    const emb = (await vision.run({ pixel_values: new ort.Tensor('float32', randomTiles(1, 448, 3), [1, 3, 448, 448]) })).image_embeds.data as Float32Array;
    const ids = promptIds(m, [1], [30, 31]);
    const r = await runDecoder(decoder, m, { ids: [ids], positions: [ids.map((_, i) => i)], mask: [ids.map(() => 1)], imageRows: emb, prefix: emptyKv(m, 1), past: emptyKv(m, 1) });
    await vision.release();
    await decoder.release();
    return { emb, logits: r.logits[0] };
  }

  for (const [name, opts, visionTol, logitTol] of [
    ['int4, int8 activations, int4 vision', { dtype: 'int4', activations: 'int8', vision: 'int4' }, 0.35, 0.5],
    ['int4, int8 vision', { dtype: 'int4', vision: 'int8' }, 0.1, 0.5],
    ['int8 decoder, int8 vision', { dtype: 'int8', vision: 'int8' }, 0.1, 0.2],
  ] as const) {
    it(`${name}: recorded in the manifest, loads, outputs near fp32`, async () => {
      const out = join(base.root, name.replace(/[^a-z0-9]+/g, '-'));
      const { manifest } = await buildModel(base.snapDir, out, opts);
      expect(manifest.quantization).toEqual({ activations: 'activations' in opts ? opts.activations : 'fp32', vision: opts.vision });
      expect(manifest.dtype).toBe(opts.dtype);
      expect(readManifest(out).quantization).toEqual(manifest.quantization);
      const visionGraph = readFileSync(join(out, 'vision.onnx'));
      expect(visionGraph.includes(opts.vision === 'int4' ? 'MatMulNBits' : 'DynamicQuantizeMatMul')).toBe(true);
      const decoderGraph = readFileSync(join(out, 'decoder.onnx'));
      expect(decoderGraph.includes('accuracy_level')).toBe('activations' in opts && opts.activations === 'int8');
      expect(decoderGraph.includes('DynamicQuantizeMatMul')).toBe(opts.dtype === 'int8');
      expect(decoderGraph.includes('MatMulNBits')).toBe(opts.dtype === 'int4');
      const ref = await outputsOf(base.outDir);
      const got = await outputsOf(out);
      measured[`${name}: vision`] = relErr(got.emb, ref.emb);
      measured[`${name}: logits`] = relErr(got.logits, ref.logits);
      expect(measured[`${name}: vision`]).toBeGreaterThan(0);
      expect(measured[`${name}: vision`]).toBeLessThanOrEqual(visionTol);
      expect(measured[`${name}: logits`]).toBeLessThanOrEqual(logitTol);
    });
  }

  it('the CLI takes --activations/--vision and refuses a combination it cannot build (exit 2, usage)', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runModelCli(['build', base.snapDir, join(base.root, 'cli-bad'), '--activations', 'int8'], { logLevel: 'silent' })).toBe(2);
      expect(err.mock.calls.map((c) => String(c[0])).join('')).toMatch(/--activations int8 applies to int4/);
      expect(await runModelCli(['build', base.snapDir, join(base.root, 'cli-bad2'), '--dtype', 'int4', '--vision'], { logLevel: 'silent' })).toBe(2);
      expect(await runModelCli(['build', base.snapDir, join(base.root, 'cli-ok'), '--dtype', 'int4', '--activations', 'int8', '--vision', 'int4'], { logLevel: 'silent' })).toBe(0);
      expect(out.mock.calls.map((c) => String(c[0])).join('')).toMatch(/int4, int8 activations, vision int4, RANDOM WEIGHTS/);
      expect(readManifest(join(base.root, 'cli-ok')).quantization).toEqual({ activations: 'int8', vision: 'int4' });
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });
});
