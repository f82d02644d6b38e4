/**
 * Baseline (b) of the runtime bench: `@huggingface/transformers` (transformers.js) generating with the same
 * decoder weights. transformers.js is ~475 MB of dependencies, so it is never a dependency of volmo-cds: it
 * is pinned in ./package.json and installed into ./node_modules (git-ignored) on first use, then imported
 * from there. Only the few members used here are typed.
 */
// First: transformers.js brings its own onnxruntime-node; its telemetry is off too.
import '../../src/platform/no-telemetry.js';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BASELINE_DIR = dirname(fileURLToPath(import.meta.url));
const ENTRY = join(BASELINE_DIR, 'node_modules', '@huggingface', 'transformers', 'dist', 'transformers.node.mjs');

interface TjsTensor {
  dims: number[];
  data: ArrayLike<bigint | number>;
}
interface TjsModel {
  generate(args: Record<string, unknown>): Promise<TjsTensor>;
  dispose(): Promise<unknown>;
}
export interface Transformers {
  env: { allowRemoteModels: boolean; allowLocalModels: boolean; localModelPath: string; useFSCache?: boolean; cacheDir?: string | null };
  Tensor: new (type: string, data: ArrayLike<unknown>, dims: number[]) => TjsTensor;
  DynamicCache: new (entries: Record<string, TjsTensor>) => object;
  AutoModelForCausalLM: { from_pretrained(dir: string, opts: Record<string, unknown>): Promise<TjsModel> };
}

export const transformersInstalled = (): boolean => existsSync(ENTRY);

/** The installed transformers.js version (for the bench's notes). */
export function transformersVersion(): string {
  const pkg = join(BASELINE_DIR, 'node_modules', '@huggingface', 'transformers', 'package.json');
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** Installs the pinned transformers.js into this folder (npm registry only; no install scripts needed). */
export function installTransformers(): void {
  execFileSync('npm', ['install', '--prefix', BASELINE_DIR, '--no-audit', '--no-fund', '--no-package-lock'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    // onnxruntime-node's postinstall would fetch CUDA providers from NuGet; the CPU binary is bundled.
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });
  if (!transformersInstalled()) throw new Error(`npm install in ${BASELINE_DIR} did not produce ${ENTRY}`);
}

export async function loadTransformers(opts: { install: boolean }): Promise<Transformers | null> {
  if (!transformersInstalled()) {
    if (!opts.install) return null;
    installTransformers();
  }
  const t = (await import(pathToFileURL(ENTRY).href)) as Transformers;
  t.env.allowRemoteModels = false; // local folders only; nothing is downloaded
  t.env.allowLocalModels = true;
  return t;
}

export class TransformersDecoder {
  private constructor(
    private readonly t: Transformers,
    private readonly model: TjsModel,
    private readonly layers: number,
  ) {}

  /** Loads an `exportLlamaOnnx` folder on ORT's CPU provider (`onnx/model.onnx`: transformers.js's 'fp32' file name, whatever weight encoding the export used). */
  static async open(t: Transformers, dir: string, layers: number): Promise<TransformersDecoder> {
    const model = await t.AutoModelForCausalLM.from_pretrained(dir, { dtype: 'fp32', device: 'cpu', local_files_only: true });
    return new TransformersDecoder(t, model, layers);
  }

  private ids(ids: readonly number[]): TjsTensor {
    return new this.t.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
  }

  /** Greedy generation from scratch (prefill + `maxNewTokens` tokens), no stop ids; returns the new tokens. */
  async greedy(prompt: readonly number[], maxNewTokens: number): Promise<number[]> {
    const out = await this.model.generate({
      input_ids: this.ids(prompt),
      attention_mask: this.ones(prompt.length),
      max_new_tokens: maxNewTokens,
      do_sample: false,
      eos_token_id: null,
    });
    return Array.from(out.data, Number).slice(prompt.length);
  }

  /**
   * ms per token of `steps` greedy steps after `ctx` tokens of (random) cached KV, as the runtime bench
   * measures its own loops: transformers.js feeds the whole cache and gets the whole cache back every step.
   */
  async decodeMs(kv: (layer: number) => { key: Float32Array; value: Float32Array; dims: readonly number[] }, ctx: number, steps: number): Promise<number> {
    const entries: Record<string, TjsTensor> = {};
    for (let i = 0; i < this.layers; i++) {
      const { key, value, dims } = kv(i);
      entries[`past_key_values.${i}.key`] = new this.t.Tensor('float32', key, [...dims]);
      entries[`past_key_values.${i}.value`] = new this.t.Tensor('float32', value, [...dims]);
    }
    const t0 = performance.now();
    await this.model.generate({
      input_ids: this.ids([5]),
      attention_mask: this.ones(ctx + 1),
      past_key_values: new this.t.DynamicCache(entries),
      max_new_tokens: steps,
      do_sample: false,
      eos_token_id: null,
    });
    return (performance.now() - t0) / steps;
  }

  private ones(n: number): TjsTensor {
    return new this.t.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
  }
}
