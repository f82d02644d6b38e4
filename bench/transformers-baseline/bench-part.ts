/**
 * The runtime bench's hook for baseline (b): `--baseline=auto` (default: measured when the bench-local
 * transformers.js is installed), `--baseline=transformers` (installs it on first use, then measures),
 * `--baseline=none`. The Llama export of the bench snapshot is cached next to the built bench model.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { WeightDtype } from '../../src/model/build/linear.js';
import { exportLlamaOnnx, LLAMA_ONNX } from './llama-export.js';
import { loadTransformers, transformersVersion, TransformersDecoder } from './baseline.js';

export type BaselineMode = 'auto' | 'transformers' | 'none';

export interface OpenedBaseline {
  decoder: TransformersDecoder | null;
  /** Why it is absent, or what it runs. */
  note: string;
}

export async function openTransformersBaseline(
  mode: BaselineMode,
  snapshotDir: string | null,
  layers: number,
  dtype: WeightDtype,
): Promise<OpenedBaseline> {
  if (mode === 'none') return { decoder: null, note: 'transformers.js baseline off (--baseline=none)' };
  if (!snapshotDir) return { decoder: null, note: 'transformers.js baseline needs the snapshot: pass --snapshot=DIR with --model=DIR' };
  const t = await loadTransformers({ install: mode === 'transformers' });
  if (!t) {
    return { decoder: null, note: 'transformers.js baseline not installed: run with --baseline=transformers once (installs bench/transformers-baseline)' };
  }
  // Keyed by the snapshot (path and config) too, so another snapshot never reuses a stale export.
  const key = createHash('sha256').update(resolve(snapshotDir)).update(readFileSync(join(snapshotDir, 'config.json'))).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), `volmo-bench-${layers}l-${dtype}-${key}-llama-onnx`);
  if (!existsSync(join(dir, LLAMA_ONNX)) || !existsSync(join(dir, 'generation_config.json'))) exportLlamaOnnx(snapshotDir, dir, dtype);
  const decoder = await TransformersDecoder.open(t, dir, layers);
  return { decoder, note: `transformers.js: @huggingface/transformers ${transformersVersion()}, Llama-shaped export of the same decoder weights (${dtype}), ORT CPU` };
}

/** Greedy tokens of transformers.js must equal the runtime's for the same prompt ids before any timing. */
export async function assertSameGreedy(
  decoder: TransformersDecoder,
  runtimeGreedy: (prompt: number[], n: number) => Promise<number[]>,
  prompt: number[],
  n: number,
): Promise<string> {
  const theirs = await decoder.greedy(prompt, n);
  const ours = await runtimeGreedy(prompt, n);
  if (theirs.length !== n || theirs.some((t, i) => t !== ours[i])) {
    throw new Error(`transformers.js greedy tokens differ from the runtime's: [${theirs.join(',')}] vs [${ours.join(',')}]`);
  }
  return `parity: transformers.js and the runtime produce the same ${n} greedy tokens for a ${prompt.length}-token prompt`;
}
