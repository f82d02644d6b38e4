/**
 * `volmo model bench-snapshot <out> --layers N`: random-weight snapshot with InternLM2-1.8B layer geometry
 * (hidden 2048, 16 heads / 8 KV heads, head 128, FFN 8192, vocab 92553) and InternViT-300M geometry
 * (hidden 1024, 16 heads, FFN 4096, 448 px, patch 14), with fewer layers. Marked random (not clinical).
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeRandomSnapshot } from './snapshot/random-snapshot.js';
import { INTERNVL2_SPECIAL_TOKENS, specialTokensFromTokenizerConfig } from './snapshot/special-tokens.js';
import { internVlConfig, TINY_TOKENIZER_DIR } from './tiny.js';

export interface BenchSnapshotOptions {
  /** LLM layers (VOLMO-2B has 24). */
  layers: number;
  /** Vision layers (InternViT-300M has 24); default = layers. */
  visionLayers?: number;
  seed?: number;
  shardBytes?: number;
  /**
   * Copy the tiny SentencePiece tokenizer fixture (and take its special-token ids) so that real prompts can be
   * encoded, e.g. the accuracy bench's exam (its ids all lie inside the bench vocabulary).
   */
  tokenizer?: boolean;
}

const TOKENIZER_FILES = ['tokenizer.model', 'tokenizer_config.json'];

export function benchConfig(opts: BenchSnapshotOptions): Record<string, unknown> {
  const tokens = opts.tokenizer ? specialTokensFromTokenizerConfig(JSON.parse(readFileSync(join(TINY_TOKENIZER_DIR, 'tokenizer_config.json'), 'utf8'))) : null;
  return internVlConfig({
    name: `volmo-bench-${opts.layers}l`,
    vision: { hidden: 1024, layers: opts.visionLayers ?? opts.layers, heads: 16, intermediate: 4096 },
    llm: { hidden: 2048, layers: opts.layers, heads: 16, kvHeads: 8, intermediate: 8192, vocab: 92553 },
    specialTokens: tokens ?? INTERNVL2_SPECIAL_TOKENS,
  });
}

export function writeBenchSnapshot(outDir: string, opts: BenchSnapshotOptions): void {
  if (!Number.isInteger(opts.layers) || opts.layers < 1 || opts.layers > 24) throw new RangeError('--layers must be 1..24');
  writeRandomSnapshot(outDir, benchConfig(opts), { seed: opts.seed ?? 4321, shardBytes: opts.shardBytes ?? 2e9 });
  if (opts.tokenizer) for (const f of TOKENIZER_FILES) copyFileSync(join(TINY_TOKENIZER_DIR, f), join(outDir, f));
}
