/** Writes an HF-format InternVL-chat snapshot with seeded random weights (tiny test model, benchmark model). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { INTEGER_ROPE_FACTOR, parseConfig } from './config.js';
import { writeSafetensors, writeShardedSafetensors, type NamedTensor } from './safetensors.js';
import { tensorSpecs, type TensorSpec } from './tensor-names.js';

/** mulberry32: uniform numbers in [0, 1), deterministic for a seed. */
export function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** mulberry32 uniform generator + Box-Muller normals; deterministic for a seed. */
export function seededNormal(seed: number): () => number {
  const uniform = seededUniform(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = Math.max(uniform(), 1e-12);
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * uniform();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
}

function hashName(name: string, seed: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Random values per tensor kind, scaled so activations stay O(1) and logits are well separated. */
export function randomTensor(spec: TensorSpec, seed: number): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const rnd = seededNormal(hashName(spec.name, seed));
  const out = new Float32Array(n);
  const fanIn = spec.shape.slice(1).reduce((a, b) => a * b, 1);
  let mean = 0;
  let std = 1;
  switch (spec.kind) {
    case 'linear':
      std = 1 / Math.sqrt(fanIn);
      break;
    case 'bias':
      std = 0.02;
      break;
    case 'normWeight':
      mean = 1;
      std = 0.1;
      break;
    case 'normBias':
      std = 0.05;
      break;
    case 'layerScale':
      mean = 0.5;
      std = 0.1;
      break;
    case 'embedding':
      std = 1;
      break;
    case 'posEmbedding':
      std = 0.5;
      break;
    case 'head':
      std = 4 / Math.sqrt(fanIn);
      break;
  }
  for (let i = 0; i < n; i++) out[i] = mean + std * rnd();
  return out;
}

export interface RandomSnapshotOptions {
  seed: number;
  /** Split into shards of about this many bytes (with model.safetensors.index.json). */
  shardBytes?: number;
}

/**
 * config.json text as Python's json.dump writes a config: `rope_scaling.factor` is a float literal (`2.0`), because
 * InternLM2Config rejects an integer factor (`isinstance(factor, float)`), and JSON.stringify writes 2.0 as `2`.
 */
export function configJsonText(configJson: Record<string, unknown>): string {
  const text = JSON.stringify(configJson, null, 2);
  return `${text.replace(INTEGER_ROPE_FACTOR, '$1$2.0')}\n`;
}

/** Writes config.json + bf16 safetensors for `configJson` (an InternVL-chat config object). */
export function writeRandomSnapshot(outDir: string, configJson: Record<string, unknown>, opts: RandomSnapshotOptions): void {
  const { geometry } = parseConfig(configJson);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'config.json'), configJsonText(configJson));
  const tensors: NamedTensor[] = tensorSpecs(geometry).map((s) => ({
    name: s.name,
    shape: s.shape,
    data: () => randomTensor(s, opts.seed),
  }));
  if (opts.shardBytes) writeShardedSafetensors(outDir, tensors, 'BF16', opts.shardBytes);
  else writeSafetensors(join(outDir, 'model.safetensors'), tensors, 'BF16');
}
