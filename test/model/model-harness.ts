/** Test-only helpers: build the tiny model, run the decoder graph per the contract, greedy loops. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildModel, type BuildOptions } from '../../src/model/build/build-model.js';
import type { Manifest } from '../../src/model/manifest.js';
import { argmax } from './reference/math.js';
import type { ReferenceDecoder } from './reference/decoder.js';
import { seededNormal } from '../../src/model/snapshot/random-snapshot.js';
import { SafetensorsReader, SINGLE_FILE, writeSafetensors, type NamedTensor } from '../../src/model/snapshot/safetensors.js';
import { writeTinySnapshot } from '../../src/model/tiny.js';

export interface TinyModel {
  root: string;
  snapDir: string;
  outDir: string;
  manifest: Manifest;
  warnings: string[];
}

export async function buildTiny(opts: BuildOptions & { seed?: number; shardBytes?: number; root?: string } = {}): Promise<TinyModel> {
  const root = opts.root ?? mkdtempSync(join(tmpdir(), 'volmo-tiny-'));
  const snapDir = join(root, 'snapshot');
  writeTinySnapshot(snapDir, { seed: opts.seed ?? 1234, shardBytes: opts.shardBytes });
  const outDir = join(root, `built-${opts.dtype ?? 'fp32'}${opts.externalData ? '-ext' : ''}`);
  const { manifest, warnings } = await buildModel(snapDir, outDir, opts);
  return { root, snapDir, outDir, manifest, warnings };
}

/** Rewrites a single-file snapshot's weights: `edit` may change tensors in place; `extra` tensors are added. */
export function rewriteSnapshotWeights(snapDir: string, edit: (name: string, data: Float32Array) => void, extra: NamedTensor[] = []): void {
  const r = new SafetensorsReader(snapDir);
  const tensors: NamedTensor[] = r.names().map((name) => {
    const data = r.read(name);
    edit(name, data);
    return { name, shape: r.info(name).shape, data };
  });
  writeSafetensors(join(snapDir, SINGLE_FILE), [...tensors, ...extra], 'BF16');
}

/** Per layer K and V, each [B, kvHeads, len, headDim] flattened. */
export interface Kv {
  k: Float32Array[];
  v: Float32Array[];
  batch: number;
  len: number;
}

export function emptyKv(m: Manifest, batch: number): Kv {
  const z = () => Array.from({ length: m.llm.layers }, () => new Float32Array(0));
  return { k: z(), v: z(), batch, len: 0 };
}

/** Concatenates two caches along the sequence axis. */
export function concatKv(m: Manifest, a: Kv, b: Kv): Kv {
  const { kvHeads, headDim } = m.llm;
  const rows = a.batch * kvHeads;
  const join2 = (x: Float32Array, y: Float32Array) => {
    const out = new Float32Array(x.length + y.length);
    for (let r = 0; r < rows; r++) {
      out.set(x.subarray(r * a.len * headDim, (r + 1) * a.len * headDim), r * (a.len + b.len) * headDim);
      out.set(y.subarray(r * b.len * headDim, (r + 1) * b.len * headDim), (r * (a.len + b.len) + a.len) * headDim);
    }
    return out;
  };
  return { k: a.k.map((x, i) => join2(x, b.k[i])), v: a.v.map((x, i) => join2(x, b.v[i])), batch: a.batch, len: a.len + b.len };
}

const i64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);

export async function runDecoder(
  session: ort.InferenceSession,
  m: Manifest,
  args: { ids: number[][]; positions: number[][]; mask: number[][]; imageRows?: Float32Array; prefix: Kv; past: Kv },
): Promise<{ logits: Float32Array[]; present: Kv }> {
  const B = args.ids.length;
  const T = args.ids[0].length;
  const { hidden, kvHeads, headDim, layers, vocab } = m.llm;
  const img = args.imageRows ?? new Float32Array(0);
  const feeds: Record<string, ort.Tensor> = {
    input_ids: i64(args.ids),
    position_ids: i64(args.positions),
    attention_mask: i64(args.mask),
    image_embeds: new ort.Tensor('float32', img, [img.length / hidden, hidden]),
  };
  const p = m.graphs.decoder.layerNamePatterns;
  const name = (pat: string, i: number) => pat.replace('{i}', String(i));
  for (let i = 0; i < layers; i++) {
    feeds[name(p.prefixKey, i)] = new ort.Tensor('float32', args.prefix.k[i], [B, kvHeads, args.prefix.len, headDim]);
    feeds[name(p.prefixValue, i)] = new ort.Tensor('float32', args.prefix.v[i], [B, kvHeads, args.prefix.len, headDim]);
    feeds[name(p.pastKey, i)] = new ort.Tensor('float32', args.past.k[i], [B, kvHeads, args.past.len, headDim]);
    feeds[name(p.pastValue, i)] = new ort.Tensor('float32', args.past.v[i], [B, kvHeads, args.past.len, headDim]);
  }
  const out = await session.run(feeds);
  const logitsAll = out.logits.data as Float32Array;
  const present: Kv = { k: [], v: [], batch: B, len: T };
  for (let i = 0; i < layers; i++) {
    present.k.push(out[name(p.presentKey, i)].data as Float32Array);
    present.v.push(out[name(p.presentValue, i)].data as Float32Array);
  }
  return { logits: Array.from({ length: B }, (_, b) => logitsAll.slice(b * vocab, (b + 1) * vocab)), present };
}

/** Greedy with the split design: prompt KV as read-only prefix, generated tokens' KV as past. */
export async function onnxGreedy(session: ort.InferenceSession, m: Manifest, ids: number[], imageRows: Float32Array, steps: number) {
  const first = await runDecoder(session, m, {
    ids: [ids],
    positions: [ids.map((_, i) => i)],
    mask: [ids.map(() => 1)],
    imageRows,
    prefix: emptyKv(m, 1),
    past: emptyKv(m, 1),
  });
  const prefix = first.present;
  let past = emptyKv(m, 1);
  const logits: Float32Array[] = [first.logits[0]];
  const tokens: number[] = [argmax(first.logits[0])];
  while (tokens.length < steps) {
    const pos = ids.length + tokens.length - 1;
    const r = await runDecoder(session, m, {
      ids: [[tokens[tokens.length - 1]]],
      positions: [[pos]],
      mask: [new Array(pos + 1).fill(1)],
      prefix,
      past,
    });
    past = concatKv(m, past, r.present);
    logits.push(r.logits[0]);
    tokens.push(argmax(r.logits[0]));
  }
  return { tokens, logits };
}

export function referenceGreedy(ref: ReferenceDecoder, ids: number[], imageRows: Float32Array[], steps: number) {
  ref.reset();
  const logits: Float32Array[] = [ref.feed(ids, imageRows)];
  const tokens: number[] = [argmax(logits[0])];
  while (tokens.length < steps) {
    logits.push(ref.feed([tokens[tokens.length - 1]]));
    tokens.push(argmax(logits[logits.length - 1]));
  }
  return { tokens, logits };
}

/** max |a - b| / max |b|: error relative to the reference logit scale. */
export function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

/** Seeded pseudo-normalised pixel tiles [n, 3, S, S]. */
export function randomTiles(n: number, size: number, seed: number): Float32Array {
  const rnd = seededNormal(seed);
  const out = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < out.length; i++) out[i] = rnd();
  return out;
}

/** A prompt in the internlm2-chat shape with one <img> block per image (tile counts given). */
export function promptIds(m: Manifest, tilesPerImage: number[], question: number[]): number[] {
  const t = m.tokens;
  const ids = [t.bos, t.imStart, 10, 11, 12, t.imEnd, t.imStart, 13];
  for (const [k, tiles] of tilesPerImage.entries()) {
    if (tilesPerImage.length > 1) ids.push(20 + k, 21);
    ids.push(t.imgStart, ...new Array(tiles * m.tokensPerTile).fill(t.imgContext), t.imgEnd, 14);
  }
  ids.push(...question, t.imEnd, t.imStart, 15, 16);
  return ids;
}
