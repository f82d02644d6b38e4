import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LinearEmitter } from '../../src/model/build/linear.js';
import { GraphBuilder } from '../../src/model/onnx/graph-builder.js';
import { DataType } from '../../src/model/onnx/onnx-proto.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { buildModel } from '../../src/model/build/build-model.js';
import { deinterleaveWqkv } from '../../src/model/build/deinterleave.js';
import { dequantizeInt4, quantizeInt4 } from '../../src/model/build/quantize.js';
import { loadVerifiedManifest, readManifest, verifyModelFiles } from '../../src/model/manifest.js';
import { configJsonText } from '../../src/model/snapshot/random-snapshot.js';
import { SnapshotError } from '../../src/model/snapshot/snapshot-error.js';
import { writeTinySnapshot } from '../../src/model/tiny.js';
import { decoderSpecOf } from '../../src/model/runtime/model-dir.js';
import { buildTiny, emptyKv, promptIds, randomTiles, relErr, rewriteSnapshotWeights, runDecoder, type TinyModel } from './model-harness.js';

describe('wqkv de-interleave', () => {
  it('splits a hand-computed grouped layout (4 heads, 2 KV heads, head 1, hidden 1)', () => {
    // rows grouped per KV head: [q0 q1 k0 v0 | q2 q3 k1 v1]
    const w = Float32Array.from([10, 11, 20, 30, 12, 13, 21, 31]);
    const { q, k, v } = deinterleaveWqkv(w, 4, 2, 1, 1);
    expect(Array.from(q)).toEqual([10, 11, 12, 13]);
    expect(Array.from(k)).toEqual([20, 21]);
    expect(Array.from(v)).toEqual([30, 31]);
  });
  it('keeps whole head_dim x hidden blocks together (2 heads, 1 KV head, head 2, hidden 2)', () => {
    // group 0: q0 rows [1,2],[3,4]; q1 rows [5,6],[7,8]; k rows [9,10],[11,12]; v rows [13,14],[15,16]
    const w = Float32Array.from({ length: 16 }, (_, i) => i + 1);
    const { q, k, v } = deinterleaveWqkv(w, 2, 1, 2, 2);
    expect(Array.from(q)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(k)).toEqual([9, 10, 11, 12]);
    expect(Array.from(v)).toEqual([13, 14, 15, 16]);
    expect(() => deinterleaveWqkv(w, 3, 2, 2, 2)).toThrow();
  });
});

describe('int4 block quantisation', () => {
  it('packs low nibble first and dequantises within half a step', () => {
    const w = Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i) * (i % 7));
    const q = quantizeInt4(w, 2, 64, 32);
    expect(q.packed.length).toBe(2 * 2 * 16);
    expect(q.scales.length).toBe(4);
    const back = dequantizeInt4(q);
    for (let i = 0; i < w.length; i++) {
      const scale = q.scales[Math.floor(i / 64) * 2 + Math.floor((i % 64) / 32)];
      expect(Math.abs(back[i] - w[i])).toBeLessThanOrEqual(scale / 2 + 1e-6);
    }
    expect(back.length).toBe(w.length);
    const one = quantizeInt4(Float32Array.from([...new Array(31).fill(0), 8]), 1, 32, 32);
    // scale 8/7: element 31 (odd -> high nibble of byte 15) -> 7 + 8 = 15; element 0 -> code 8 (low nibble)
    expect(one.packed[15] >> 4).toBe(15);
    expect(one.packed[0] & 15).toBe(8);
  });
});

describe('MatMulNBits layout', () => {
  it('onnxruntime computes x @ dequant(W)^T exactly for our packing (K=64, N=3)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volmo-nbits-'));
    try {
      const g = new GraphBuilder('nbits');
      const x = g.input('x', DataType.FLOAT, [2, 64]);
      const w = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.cos(i * 0.37) * (1 + (i % 5)));
      g.output('y', DataType.FLOAT, [2, 3], new LinearEmitter(g, 'int4').linear(x, 'lin', w, 3, 64));
      g.save(join(dir, 'm.onnx'), [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }]);
      const xs = Float32Array.from({ length: 128 }, (_, i) => Math.sin(i));
      const s = await ort.InferenceSession.create(join(dir, 'm.onnx'));
      const y = (await s.run({ x: new ort.Tensor('float32', xs, [2, 64]) })).y.data as Float32Array;
      await s.release();
      const dq = dequantizeInt4(quantizeInt4(w, 3, 64, 32));
      for (let r = 0; r < 2; r++)
        for (let n = 0; n < 3; n++) {
          let want = 0;
          for (let k = 0; k < 64; k++) want += xs[r * 64 + k] * dq[n * 64 + k];
          expect(y[r * 3 + n]).toBeCloseTo(want, 3);
        }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('buildModel on the tiny snapshot', () => {
  let tiny: TinyModel;
  beforeAll(async () => {
    tiny = await buildTiny({ seed: 77 });
  });
  afterAll(() => rmSync(tiny.root, { recursive: true, force: true }));

  it('writes the contract files, a manifest that verifies, and a tokenizer.json', async () => {
    const m = await loadVerifiedManifest(tiny.outDir);
    expect(m.random).toBe(true);
    expect(m.dtype).toBe('fp32');
    expect(m.tokensPerTile).toBe(256);
    expect(m.stopIds).toEqual([m.tokens.imEnd]); // chat(): eos_token_id = <|im_end|> only, </s> does not stop
    expect(decoderSpecOf(m).maxPositions).toBe(32768); // dynamic NTK rope: exact up to max_position_embeddings
    expect(m.unusedTensors).toBeUndefined();
    expect(m.fp16Storage).toBeUndefined();
    expect(m.graphs.decoder.inputs.slice(0, 6)).toEqual(['input_ids', 'image_embeds', 'position_ids', 'attention_mask', 'prefix_key.0', 'prefix_value.0']);
    expect(m.graphs.decoder.outputs.slice(0, 3)).toEqual(['logits', 'present_key.0', 'present_value.0']);
    expect(Object.keys(m.files).sort()).toEqual(['decoder.onnx', 'tokenizer.json', 'tokenizer_config.json', 'vision.onnx']);
    expect(Object.keys(m.source.weights)).toEqual(['model.safetensors']);
    expect(m.source.tokenizer).toMatch(/^[0-9a-f]{64}$/);
    const session = await ort.InferenceSession.create(join(tiny.outDir, 'decoder.onnx'));
    expect([...session.inputNames].sort()).toEqual([...m.graphs.decoder.inputs].sort());
    expect([...session.outputNames].sort()).toEqual([...m.graphs.decoder.outputs].sort());
    await session.release();
    expect(tiny.warnings).toEqual([]);
  });

  it('detects a checksum mismatch, a wrong size, a missing file and a broken manifest', async () => {
    const copy = join(tiny.root, 'tamper');
    await buildModel(tiny.snapDir, copy);
    const bytes = readFileSync(join(copy, 'vision.onnx'));
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(join(copy, 'vision.onnx'), bytes);
    expect(await verifyModelFiles(copy, readManifest(copy))).toEqual([{ file: 'vision.onnx', problem: 'checksum' }]);
    await expect(loadVerifiedManifest(copy)).rejects.toThrow(/vision.onnx: checksum mismatch/);
    appendFileSync(join(copy, 'tokenizer.json'), ' ');
    unlinkSync(join(copy, 'decoder.onnx'));
    const problems = await verifyModelFiles(copy, readManifest(copy));
    expect(problems).toContainEqual({ file: 'decoder.onnx', problem: 'missing' });
    expect(problems).toContainEqual({ file: 'tokenizer.json', problem: 'size' });
    writeFileSync(join(copy, 'manifest.json'), '{"format":"other"}');
    expect(() => readManifest(copy)).toThrow(SnapshotError);
    // A directory built by an older builder (graphs of another contract) says so and how to fix it.
    writeFileSync(join(copy, 'manifest.json'), JSON.stringify({ ...readManifest(tiny.outDir), format: 'volmo-model/1' }));
    expect(() => readManifest(copy)).toThrow(/format volmo-model\/1 was built by another volmo version.*rebuild/);
    unlinkSync(join(copy, 'manifest.json'));
    expect(() => readManifest(copy)).toThrow(/missing/);
  });

  it('external data, sharded safetensors and no tokenizer: same logits, warning instead of failure', async () => {
    const root = join(tiny.root, 'variants');
    const snap = join(root, 'sharded');
    writeTinySnapshot(snap, { seed: 77, shardBytes: 40_000, tokenizer: false });
    const res = await buildModel(snap, join(root, 'ext'), { externalData: true });
    expect(res.warnings.join()).toMatch(/no tokenizer.model/);
    expect(res.manifest.tokenizer).toBeNull();
    expect(Object.keys(res.manifest.source.weights).length).toBeGreaterThan(2);
    expect(res.manifest.graphs.decoder.externalData).toBe('decoder.onnx.data');
    expect(statSync(join(root, 'ext', 'decoder.onnx')).size).toBeLessThan(100_000);
    expect(res.manifest.files['decoder.onnx.data'].bytes).toBeGreaterThan(300_000);
    const ids = promptIds(tiny.manifest, [], [5, 6, 7]);
    const run = async (dir: string) => {
      const s = await ort.InferenceSession.create(join(dir, 'decoder.onnx'));
      const r = await runDecoder(s, tiny.manifest, { ids: [ids], positions: [ids.map((_, i) => i)], mask: [ids.map(() => 1)], prefix: emptyKv(tiny.manifest, 1), past: emptyKv(tiny.manifest, 1) });
      await s.release();
      return r.logits[0];
    };
    expect(Array.from(await run(join(root, 'ext')))).toEqual(Array.from(await run(tiny.outDir)));
  });

  it('rejects bad snapshots with SnapshotError', async () => {
    const bad = join(tiny.root, 'bad');
    writeTinySnapshot(bad, { seed: 1, tokenizer: false });
    const cfg = JSON.parse(readFileSync(join(bad, 'config.json'), 'utf8'));
    cfg.llm_config.hidden_size = 128;
    writeFileSync(join(bad, 'config.json'), configJsonText(cfg));
    await expect(buildModel(bad, join(tiny.root, 'bad-out'))).rejects.toThrow(/has shape .* expected/);
    unlinkSync(join(bad, 'config.json'));
    await expect(buildModel(bad, join(tiny.root, 'bad-out'))).rejects.toBeInstanceOf(SnapshotError);
    await expect(buildModel(bad, bad)).rejects.toBeInstanceOf(SnapshotError);
    expect(existsSync(join(tiny.root, 'bad-out', 'manifest.json'))).toBe(false);
  });

  it('refuses checkpoint tensors the model does not use, naming them; --allow-unused builds and lists them', async () => {
    const snap = join(tiny.root, 'extra');
    writeTinySnapshot(snap, { seed: 3, tokenizer: false });
    const extra = ['vision_model.encoder.layers.0.attn.q_norm.weight', 'language_model.model.layers.1.attention.wqkv.bias'];
    rewriteSnapshotWeights(snap, () => {}, [
      { name: extra[0], shape: [32], data: new Float32Array(32).fill(1) },
      { name: extra[1], shape: [128], data: new Float32Array(128) },
    ]);
    const refused = buildModel(snap, join(tiny.root, 'extra-out'));
    await expect(refused).rejects.toBeInstanceOf(SnapshotError);
    await expect(refused).rejects.toThrow(/2 tensor\(s\) that the model described by config.json does not use: .*attention\.wqkv\.bias, .*attn\.q_norm\.weight.*--allow-unused/);
    expect(existsSync(join(tiny.root, 'extra-out', 'manifest.json'))).toBe(false);
    const allowed = await buildModel(snap, join(tiny.root, 'extra-out'), { allowUnused: true });
    expect(allowed.manifest.unusedTensors).toEqual([...extra].sort());
    expect(readManifest(join(tiny.root, 'extra-out')).unusedTensors).toEqual([...extra].sort());
    expect(allowed.warnings.join()).toMatch(/without 2 unused checkpoint tensor/);
  });

  it('a config without qkv_bias means false (InternVisionConfig): the checkpoint\'s qkv biases are then unused and refused', async () => {
    const snap = join(tiny.root, 'no-qkv-bias-key');
    writeTinySnapshot(snap, { seed: 3, tokenizer: false });
    const cfg = JSON.parse(readFileSync(join(snap, 'config.json'), 'utf8'));
    delete cfg.vision_config.qkv_bias;
    writeFileSync(join(snap, 'config.json'), configJsonText(cfg));
    await expect(buildModel(snap, join(tiny.root, 'no-qkv-out'))).rejects.toThrow(/does not use: vision_model\.encoder\.layers\.0\.attn\.qkv\.bias/);
  });
});

describe('fp16 and int4 builds', () => {
  const measured: Record<string, number> = {};
  let base: TinyModel;
  beforeAll(async () => {
    base = await buildTiny({ seed: 5 });
  });
  afterAll(() => {
    rmSync(base.root, { recursive: true, force: true });
    console.log('fp16/int4 vs fp32 (max |x-fp32| / max |fp32|):', measured);
  });

  async function logitsOf(dir: string) {
    const m = readManifest(dir);
    const vision = await ort.InferenceSession.create(join(dir, 'vision.onnx'));
    const decoder = await ort.InferenceSession.create(join(dir, 'decoder.onnx'));
    const tiles = randomTiles(1, 448, 3);
    const emb = (await vision.run({ pixel_values: new ort.Tensor('float32', tiles, [1, 3, 448, 448]) })).image_embeds.data as Float32Array;
    const ids = promptIds(m, [1], [30, 31]);
    const r = await runDecoder(decoder, m, { ids: [ids], positions: [ids.map((_, i) => i)], mask: [ids.map(() => 1)], imageRows: emb, prefix: emptyKv(m, 1), past: emptyKv(m, 1) });
    await vision.release();
    await decoder.release();
    return { emb, logits: r.logits[0] };
  }

  it('fp16 keeps a tensor with values beyond 65504 in fp32 (no Inf) and records the range losses in the manifest', async () => {
    const root = join(base.root, 'fp16-range');
    const snap = join(root, 'snapshot');
    writeTinySnapshot(snap, { seed: 5 });
    const big = 'language_model.model.layers.0.feed_forward.w2.weight';
    const small = 'language_model.model.layers.1.attention.wo.weight';
    rewriteSnapshotWeights(snap, (name, data) => {
      if (name === big) data.set([70000]); // beyond the largest half
      if (name === small) data.set([-1e-6, 1e-9]); // a half subnormal, and a value that flushes to zero
    });
    const fp32 = await buildModel(snap, join(root, 'fp32'));
    const fp16 = await buildModel(snap, join(root, 'fp16'), { dtype: 'fp16' });
    const r = fp16.manifest.fp16Storage!;
    expect(r.keptFp32).toEqual(['language_model.model.layers.0.feed_forward.w2.weight_t']);
    expect(r.tensors['language_model.model.layers.0.feed_forward.w2.weight_t']).toMatchObject({ overflow: 1 });
    expect(r.overflow).toBe(1);
    expect(r.tensors['language_model.model.layers.1.attention.wo.weight_t']).toMatchObject({ overflow: 0, flushedToZero: 1 });
    expect(r.tensors['language_model.model.layers.1.attention.wo.weight_t'].subnormal).toBeGreaterThanOrEqual(1);
    expect(r.subnormal).toBeGreaterThanOrEqual(1);
    expect(r.flushedToZero).toBe(1);
    expect(r.values).toBeGreaterThan(10_000);
    expect(fp16.warnings.join()).toMatch(/kept fp32 .*w2\.weight_t/);
    expect(fp32.manifest.fp16Storage).toBeUndefined();
    const ref = await logitsOf(fp32.outDir);
    const got = await logitsOf(fp16.outDir);
    expect(got.logits.every(Number.isFinite)).toBe(true);
    expect(relErr(got.logits, ref.logits)).toBeLessThanOrEqual(5e-3);
  });

  for (const [dtype, visionTol, logitTol] of [['fp16', 2e-3, 5e-3], ['int4', 2e-3, 0.35]] as const) {
    it(`${dtype} build loads and its logits stay close to fp32`, async () => {
      const { outDir, manifest } = await buildTiny({ seed: 5, dtype, root: base.root });
      expect(manifest.dtype).toBe(dtype);
      const ref = await logitsOf(base.outDir);
      const got = await logitsOf(outDir);
      measured[`${dtype} vision`] = relErr(got.emb, ref.emb);
      measured[`${dtype} logits`] = relErr(got.logits, ref.logits);
      expect(measured[`${dtype} vision`]).toBeLessThanOrEqual(visionTol);
      expect(measured[`${dtype} logits`]).toBeLessThanOrEqual(logitTol);
      if (dtype === 'int4') expect(measured[`${dtype} logits`]).toBeGreaterThan(0);
      const smaller = statSync(join(outDir, 'decoder.onnx')).size < statSync(join(base.outDir, 'decoder.onnx')).size;
      expect(smaller).toBe(true);
    });
  }
});
