/**
 * `volmo model bench-snapshot <out> --layers N`: random-weight snapshot with InternLM2-1.8B layer geometry
 * (hidden 2048, 16 heads / 8 KV heads, head 128, FFN 8192, vocab 92553) and InternViT-300M geometry
 * (hidden 1024, 16 heads, FFN 4096, 448 px, patch 14), with fewer layers. Marked random (not clinical).
 */
import { writeRandomSnapshot } from './snapshot/random-snapshot.js';
import { INTERNVL2_SPECIAL_TOKENS } from './snapshot/special-tokens.js';
import { internVlConfig } from './tiny.js';

export interface BenchSnapshotOptions {
  /** LLM layers (VOLMO-2B has 24). */
  layers: number;
  /** Vision layers (InternViT-300M has 24); default = layers. */
  visionLayers?: number;
  seed?: number;
  shardBytes?: number;
}

export function benchConfig(opts: BenchSnapshotOptions): Record<string, unknown> {
  return internVlConfig({
    name: `volmo-bench-${opts.layers}l`,
    vision: { hidden: 1024, layers: opts.visionLayers ?? opts.layers, heads: 16, intermediate: 4096 },
    llm: { hidden: 2048, layers: opts.layers, heads: 16, kvHeads: 8, intermediate: 8192, vocab: 92553 },
    specialTokens: INTERNVL2_SPECIAL_TOKENS,
  });
}

export function writeBenchSnapshot(outDir: string, opts: BenchSnapshotOptions): void {
  if (!Number.isInteger(opts.layers) || opts.layers < 1 || opts.layers > 24) throw new RangeError('--layers must be 1..24');
  writeRandomSnapshot(outDir, benchConfig(opts), { seed: opts.seed ?? 4321, shardBytes: opts.shardBytes ?? 2e9 });
}
