/**
 * The only importer of onnxruntime-node. Opens sessions on the chosen execution provider (falling
 * back to CPU with a log line that says why), checks feeds against the graph's inputs, and converts
 * between ORT tensors and plain `TensorLike` values.
 */
import { ortTelemetryOff } from '../../platform/no-telemetry.js';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import type { Logger } from '../../log.js';
import { AppError } from '../../errors.js';
import { ModelLoadError } from './load-error.js';
import { isDeviceTensor, type DeviceTensor, type FeedValue, type TensorType } from './tensor.js';
import { DeviceDownloader } from './device-download.js';

export const EXECUTION_PROVIDERS = ['cpu', 'webgpu', 'cuda', 'tensorrt'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export interface SessionOptions {
  executionProvider: ExecutionProvider;
  log: Logger;
  /** Intra-op threads; 0 lets ORT decide. */
  threads?: number;
  /**
   * Outputs (exact names or `*`-suffixed prefixes) that runs asked for `outputsOnDevice` leave on the device
   * (WebGPU). The Node binding cannot read such tensors back, only feed them again or dispose them, so the
   * session leaves every output on the device and the ones JS must read are copied to the host by a tiny
   * Identity graph (device-download.ts); the model itself is opened once.
   */
  keepOnDevice?: readonly string[];
}

/** What the generation code needs from a graph; a scripted fake implements it in tests. */
export interface ModelSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** The provider actually in use after any fallback. */
  readonly executionProvider: ExecutionProvider;
  run(feeds: Record<string, FeedValue>, options?: SessionRunOptions): Promise<Record<string, FeedValue>>;
  release(): Promise<void>;
}

export interface SessionRunOptions {
  /** Leave the `keepOnDevice` outputs on the device (ignored where the provider has no device memory). */
  outputsOnDevice?: boolean;
}

const PROVIDER_LIBS: Partial<Record<ExecutionProvider, string>> = {
  cuda: 'libonnxruntime_providers_cuda.so',
  tensorrt: 'libonnxruntime_providers_tensorrt.so',
};

/** Providers whose libraries are absent are rejected before ORT is asked (its native error is noisy). */
export function precheckProvider(requested: ExecutionProvider): string | undefined {
  const lib = PROVIDER_LIBS[requested];
  if (lib === undefined) return undefined;
  const binDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-node'));
  const candidates = [join(binDir, '..', 'bin', 'napi-v6', process.platform, process.arch, lib)];
  if (candidates.some((p) => existsSync(p))) return undefined;
  return `${requested} provider libraries are not installed (${lib} missing; a GPU host installs them with ` +
    `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node, see docs/dev/runtime.md)`;
}

function ortOptions(provider: ExecutionProvider, opts: SessionOptions, deviceOutputs: boolean) {
  const o: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
  };
  if (opts.threads) o.intraOpNumThreads = opts.threads;
  if (deviceOutputs) o.preferredOutputLocation = 'gpu-buffer';
  return o;
}

function matchesAny(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

interface OrtSession {
  session: ort.InferenceSession;
  /** Set when every output stays on the device (WebGPU with keepOnDevice): copies outputs to the host. */
  download?: DeviceDownloader;
  keepOnDevice: readonly string[];
}

async function createOrt(file: string, provider: ExecutionProvider, opts: SessionOptions): Promise<OrtSession> {
  const keepOnDevice = opts.keepOnDevice ?? [];
  const deviceOutputs = provider === 'webgpu' && keepOnDevice.length > 0;
  const session = await ort.InferenceSession.create(file, ortOptions(provider, opts, deviceOutputs));
  return deviceOutputs ? { session, download: DeviceDownloader.of(session, provider), keepOnDevice } : { session, keepOnDevice };
}

/** Opens `file` on the requested provider or, failing that, on CPU. Load failures become ModelLoadError. */
export async function openSession(file: string, opts: SessionOptions): Promise<ModelSession> {
  // Fail closed: in a worker thread the switch can only be inherited, not set (see no-telemetry.ts).
  if (!ortTelemetryOff()) {
    throw new ModelLoadError('telemetry_on', 'onnxruntime telemetry is not switched off: ORT_DISABLE_TELEMETRY=1 must be in the process environment before the library loads (src/platform/no-telemetry.ts)', { file });
  }
  if (!existsSync(file)) throw new ModelLoadError('missing_file', `model file not found: ${file}`, { file });
  const requested = opts.executionProvider;
  let provider: ExecutionProvider = requested;
  let reason = requested === 'cpu' ? undefined : precheckProvider(requested);
  let session: OrtSession | undefined;
  if (requested !== 'cpu' && reason === undefined) {
    try {
      session = await createOrt(file, requested, opts);
    } catch (err) {
      reason = `${requested} provider failed to start: ${firstLine(err)}`;
    }
  }
  if (session === undefined) {
    provider = 'cpu';
    try {
      session = await createOrt(file, 'cpu', opts);
    } catch (err) {
      throw new ModelLoadError('corrupt_graph', `cannot load ${file}: ${firstLine(err)}`, { file, cause: err });
    }
  }
  if (reason !== undefined) {
    opts.log.warn({ requested, chosen: provider, reason, file }, `execution provider: ${provider} (fallback: ${reason})`);
  } else {
    opts.log.info({ requested, chosen: provider, file }, `execution provider: ${provider}`);
  }
  return wrap(session, provider);
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].slice(0, 300);
}

/** Throws a typed error naming every graph input missing from `feeds` (and any unknown feed). */
export function checkFeeds(inputNames: readonly string[], feeds: Record<string, unknown>): void {
  const missing = inputNames.filter((n) => !(n in feeds));
  const unknown = Object.keys(feeds).filter((n) => !inputNames.includes(n));
  if (missing.length || unknown.length) {
    const parts = [];
    if (missing.length) parts.push(`missing inputs: ${missing.join(', ')}`);
    if (unknown.length) parts.push(`unknown inputs: ${unknown.join(', ')}`);
    throw new AppError('internal', `decoder feeds do not match the graph (${parts.join('; ')})`);
  }
}

function wrap(o: OrtSession, provider: ExecutionProvider): ModelSession {
  const { session, download } = o;
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    executionProvider: provider,
    async run(feeds, options) {
      checkFeeds(session.inputNames, feeds);
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(v);
      let out = (await session.run(ortFeeds)) as Record<string, ort.Tensor>;
      if (download) {
        const stay = options?.outputsOnDevice ? (n: string) => matchesAny(n, o.keepOnDevice) : () => false;
        const names = Object.keys(out);
        out = { ...out, ...(await download.toHost(out, names.filter((n) => !stay(n)))) };
      }
      const result: Record<string, FeedValue> = {};
      for (const [k, v] of Object.entries(out)) result[k] = fromOrt(v);
      return result;
    },
    async release() {
      await download?.release();
      await session.release();
    },
  };
}

const ORT_HANDLE = Symbol('ortTensor');
type DeviceHandle = DeviceTensor & { [ORT_HANDLE]: ort.Tensor };

function toOrt(v: FeedValue): ort.Tensor {
  if (isDeviceTensor(v)) return (v as DeviceHandle)[ORT_HANDLE];
  return new ort.Tensor(v.type, v.data as never, v.dims as number[]);
}

function fromOrt(t: ort.Tensor): FeedValue {
  if (t.location === 'cpu') return { type: t.type as TensorType, dims: t.dims, data: t.data as Float32Array };
  const handle: DeviceHandle = {
    location: 'device',
    type: t.type as TensorType,
    dims: t.dims,
    [ORT_HANDLE]: t,
    dispose: () => t.dispose(),
  };
  return handle;
}
