/**
 * Must-show parity: the built ONNX graphs (onnxruntime-node, CPU) against the independent TypeScript reference
 * forward pass on the tiny model: max relative logit error <= 1e-4 (fp32) and identical greedy tokens for 64 steps.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { join } from 'node:path';
import { ReferenceDecoder } from './reference/decoder.js';
import { ReferenceVision } from './reference/vision.js';
import { readConfig } from '../../src/model/snapshot/config.js';
import { SafetensorsReader } from '../../src/model/snapshot/safetensors.js';
import { buildTiny, emptyKv, onnxGreedy, promptIds, randomTiles, referenceGreedy, relErr, runDecoder, type TinyModel } from './model-harness.js';

const STEPS = 64;
const TOL = 1e-4;
let tiny: TinyModel;
let vision: ort.InferenceSession;
let decoder: ort.InferenceSession;
let refDecoder: ReferenceDecoder;
let onnxRows: Float32Array; // [7 * 256, hidden]
let refRows: Float32Array[]; // 7 * 256 rows
const measured: Record<string, number> = {};

beforeAll(async () => {
  tiny = await buildTiny({ seed: 1234 });
  const { geometry } = readConfig(tiny.snapDir);
  const reader = new SafetensorsReader(tiny.snapDir);
  refDecoder = new ReferenceDecoder(reader, geometry, tiny.manifest.tokens.imgContext);
  const refVision = new ReferenceVision(reader, geometry);
  vision = await ort.InferenceSession.create(join(tiny.outDir, tiny.manifest.graphs.vision.file));
  decoder = await ort.InferenceSession.create(join(tiny.outDir, tiny.manifest.graphs.decoder.file));
  const S = tiny.manifest.imageSize;
  const tiles = randomTiles(7, S, 99);
  const out = await vision.run({ pixel_values: new ort.Tensor('float32', tiles, [7, 3, S, S]) });
  onnxRows = out.image_embeds.data as Float32Array;
  refRows = [];
  for (let t = 0; t < 7; t++) refRows.push(...refVision.encodeTile(tiles.subarray(t * 3 * S * S, (t + 1) * 3 * S * S)));
});

afterAll(async () => {
  await vision?.release();
  await decoder?.release();
  if (tiny) rmSync(tiny.root, { recursive: true, force: true });
  console.log('parity measurements (max |onnx-ref| / max |ref|):', measured);
});

function rowsFor(tiles: number[]): { onnx: Float32Array; ref: Float32Array[] } {
  const H = tiny.manifest.llm.hidden;
  const per = tiny.manifest.tokensPerTile;
  const onnx = new Float32Array(tiles.length * per * H);
  const ref: Float32Array[] = [];
  tiles.forEach((t, i) => {
    onnx.set(onnxRows.subarray(t * per * H, (t + 1) * per * H), i * per * H);
    ref.push(...refRows.slice(t * per, (t + 1) * per));
  });
  return { onnx, ref };
}

describe('tiny model parity: ONNX vs TypeScript reference (fp32)', () => {
  it('vision graph (InternViT + pixel shuffle v2 + mlp1) matches the reference for 7 tiles', () => {
    const ref = new Float32Array(refRows.length * tiny.manifest.llm.hidden);
    refRows.forEach((r, i) => ref.set(r, i * r.length));
    expect(onnxRows.length).toBe(ref.length);
    measured.vision = relErr(onnxRows, ref);
    expect(measured.vision).toBeLessThanOrEqual(TOL);
  });

  const cases: { name: string; images: number[][] }[] = [
    { name: '1 tile', images: [[0]] },
    { name: '5 tiles', images: [[0, 1, 2, 3, 4]] },
    { name: '7 tiles', images: [[0, 1, 2, 3, 4, 5, 6]] },
    { name: 'two images (5 + 1 tiles)', images: [[2, 3, 4, 5, 6], [1]] },
  ];
  for (const c of cases) {
    it(`prompt with ${c.name}: logits within ${TOL} and identical greedy tokens for ${STEPS} steps`, async () => {
      const ids = promptIds(tiny.manifest, c.images.map((t) => t.length), [30, 31, 32]);
      const rows = rowsFor(c.images.flat());
      const ref = referenceGreedy(refDecoder, ids, rows.ref, STEPS);
      const onnx = await onnxGreedy(decoder, tiny.manifest, ids, rows.onnx, STEPS);
      expect(onnx.tokens).toEqual(ref.tokens);
      const err = Math.max(...ref.logits.map((l, i) => relErr(onnx.logits[i], l)));
      measured[c.name] = err;
      expect(err).toBeLessThanOrEqual(TOL);
      expect(new Set(ref.tokens).size).toBeGreaterThan(1);
    });
  }

  it('batch of 2 with left padding (image prompt + text prompt) matches per-prompt reference, prefill and one decode step', async () => {
    const m = tiny.manifest;
    const a = promptIds(m, [1], [40]);
    const b = [m.tokens.bos, m.tokens.imStart, 50, 51, 52, m.tokens.imEnd, m.tokens.imStart, 53];
    const padN = a.length - b.length;
    const bPadded = [...new Array(padN).fill(m.tokens.pad), ...b];
    const maskB = [...new Array(padN).fill(0), ...b.map(() => 1)];
    const posB = [...new Array(padN).fill(0), ...b.map((_, i) => i)];
    const rows = rowsFor([3]);
    const pre = await runDecoder(decoder, m, {
      ids: [a, bPadded],
      positions: [a.map((_, i) => i), posB],
      mask: [a.map(() => 1), maskB],
      imageRows: rows.onnx,
      prefix: emptyKv(m, 2),
      past: emptyKv(m, 2),
    });
    refDecoder.reset();
    const refA = refDecoder.feed(a, rows.ref);
    const nextA = 60;
    const refA2 = refDecoder.feed([nextA]);
    refDecoder.reset();
    const refB = refDecoder.feed(b);
    const nextB = 61;
    const refB2 = refDecoder.feed([nextB]);
    expect(relErr(pre.logits[0], refA)).toBeLessThanOrEqual(TOL);
    expect(relErr(pre.logits[1], refB)).toBeLessThanOrEqual(TOL);
    const step = await runDecoder(decoder, m, {
      ids: [[nextA], [nextB]],
      positions: [[a.length], [b.length]],
      mask: [[...a.map(() => 1), 1], [...maskB, 1]],
      prefix: pre.present,
      past: emptyKv(m, 2),
    });
    measured.batchLeftPad = Math.max(relErr(step.logits[0], refA2), relErr(step.logits[1], refB2));
    expect(measured.batchLeftPad).toBeLessThanOrEqual(TOL);
  });

  it('an IMG_CONTEXT id after the image rows (a generated one) takes its token embedding, as HF does', async () => {
    const m = tiny.manifest;
    const a = promptIds(m, [1], [40]);
    const rows = rowsFor([2]);
    const pre = await runDecoder(decoder, m, {
      ids: [a], positions: [a.map((_, i) => i)], mask: [a.map(() => 1)], imageRows: rows.onnx, prefix: emptyKv(m, 1), past: emptyKv(m, 1),
    });
    const step = await runDecoder(decoder, m, {
      ids: [[m.tokens.imgContext]], positions: [[a.length]], mask: [[...a.map(() => 1), 1]], prefix: pre.present, past: emptyKv(m, 1),
    });
    refDecoder.reset();
    refDecoder.feed(a, rows.ref);
    const ref = refDecoder.feed([m.tokens.imgContext]);
    measured.generatedImgContext = relErr(step.logits[0], ref);
    expect(measured.generatedImgContext).toBeLessThanOrEqual(TOL);
  });
});
