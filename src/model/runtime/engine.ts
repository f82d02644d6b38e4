/**
 * The engine: inference in worker threads (off the HTTP event loop), a bounded queue, per-request time
 * budgets that cancel and free, and batching of pending requests so their single-step questions share
 * decoder runs. A model that fails to load rejects `createEngine` with a ModelLoadError; it never
 * throws out of an event handler, so it cannot crash the process.
 */
// First: onnxruntime's telemetry off in the process environment before any worker loads the library.
import '../../platform/no-telemetry.js';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { siblingModule, spawnModuleWorker } from '../../platform/ts-worker.js';
import { AppError, type ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { InferenceCancelledError } from './cancel.js';
import { ModelLoadError, type ModelLoadReason } from './load-error.js';
import { FLAG_ABORTED, FLAG_TIMEOUT, type FromWorker, type ToWorker, type WireError, type WorkerInit } from './worker-protocol.js';
import type { Answer, EngineOptions, EngineStatus, ExamInput, GenerateInput, ModelInfo, RunOptions, VlmEngine } from './types.js';

/** The queue is full: the service is overloaded (503, retry later). */
export class EngineOverloadedError extends AppError {
  constructor(queued: number) {
    super('model_unavailable', `inference queue is full (${queued} waiting); retry later`, { expose: true });
    this.name = 'EngineOverloadedError';
  }
}

interface Request {
  input: ExamInput;
  flag: Int32Array;
  settled: boolean;
  resolve(a: Answer[]): void;
  reject(e: unknown): void;
  cleanup(): void;
}

interface Slot {
  worker: Worker;
  batch: { id: number; requests: Request[]; grace?: NodeJS.Timeout } | undefined;
  alive: boolean;
}

function fromWire(e: WireError): Error {
  if (e.code === 'model_unavailable' && e.reason) return new ModelLoadError(e.reason as ModelLoadReason, e.message, { file: e.file });
  if (e.code === 'timeout' && (e.reason === 'timeout' || e.reason === 'aborted')) return new InferenceCancelledError(e.reason);
  return new AppError(e.code as ErrorCode, e.message);
}

/** Starts a worker (`.ts` sources get tsx's loader registered inside the thread first: platform/ts-worker.ts). */
function spawn(init: WorkerInit): Worker {
  return spawnModuleWorker(siblingModule(import.meta.url, 'worker'), { workerData: init });
}

function forwardLog(log: Logger, line: string): void {
  try {
    const { level, msg, ...rest } = JSON.parse(line) as { level?: string; msg?: string };
    const fn = (['error', 'warn', 'info', 'debug'].includes(level ?? '') ? level : 'info') as 'info';
    log[fn]({ ...rest, thread: 'inference' }, msg ?? '');
  } catch {
    log.info({ thread: 'inference' }, line);
  }
}

export async function createEngine(options: EngineOptions): Promise<VlmEngine> {
  const log = options.log;
  const workers = options.workers ?? 1;
  const queueLimit = options.queueLimit ?? 16;
  const defaultTimeout = options.timeoutMs ?? 120_000;
  const grace = options.cancelGraceMs ?? 5_000;
  const batchRequests = options.batchRequests ?? 4;
  const init: WorkerInit = {
    backendModule: options.backendModule ?? new URL(`./onnx-backend${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href,
    modelDir: options.modelDir,
    executionProvider: options.executionProvider ?? 'cpu',
    // Workers share the cores: each session's thread pool gets its part (ORT's default takes them all).
    threads: options.threadsPerWorker ?? Math.max(1, Math.floor(availableParallelism() / workers)),
    verifyChecksums: options.verifyChecksums ?? true,
    logLevel: log.level === 'silent' ? 'silent' : 'info',
  };
  const queue: Request[] = [];
  const slots: Slot[] = [];
  let info: ModelInfo | undefined;
  let closed = false;
  let nextBatch = 1;

  const settle = (r: Request, fn: () => void) => {
    if (r.settled) return;
    r.settled = true;
    r.cleanup();
    fn();
  };

  /** Starts one worker; resolves when its model is loaded. */
  const start = (): Promise<Slot> =>
    new Promise((resolve, reject) => {
      const slot: Slot = { worker: spawn(init), batch: undefined, alive: false };
      const failBatch = (why: string) => {
        for (const r of slot.batch?.requests ?? []) settle(r, () => r.reject(new AppError('model_unavailable', why, { expose: true })));
        if (slot.batch?.grace) clearTimeout(slot.batch.grace);
        slot.batch = undefined;
      };
      slot.worker.on('message', (m: FromWorker) => {
        if (m.type === 'log') return forwardLog(log, m.line);
        if (m.type === 'ready') {
          slot.alive = true;
          info ??= m.info;
          return resolve(slot);
        }
        if (m.type === 'load_failed') {
          void slot.worker.terminate();
          return reject(fromWire(m.error));
        }
        if (m.type === 'done' && slot.batch?.id === m.batchId) {
          if (slot.batch.grace) clearTimeout(slot.batch.grace);
          slot.batch.requests.forEach((r, i) => {
            const res = m.results[i];
            settle(r, () => (res.ok ? r.resolve(res.answers) : r.reject(fromWire(res.error))));
          });
          slot.batch = undefined;
          pump();
        }
      });
      slot.worker.on('error', (err) => {
        log.error({ err }, 'inference worker failed');
        if (!slot.alive) reject(new ModelLoadError('worker_failed', `inference worker failed to start: ${err.message}`, { cause: err }));
      });
      slot.worker.on('exit', (code) => {
        const wasAlive = slot.alive;
        slot.alive = false;
        failBatch(`inference worker stopped (exit ${code})`);
        if (!wasAlive) reject(new ModelLoadError('worker_failed', `inference worker exited (code ${code}) before the model loaded`));
        else if (!closed) replace(slot);
      });
    });

  /** Replacements still loading: requests wait for them (each has its own deadline) instead of failing. */
  let replacing = 0;
  /** A crashed or terminated worker is replaced; the replacement reloads the model. */
  const replace = (dead: Slot) => {
    const i = slots.indexOf(dead);
    log.warn({ worker: i }, 'replacing inference worker');
    replacing++;
    start()
      .then((s) => {
        if (closed) return void s.worker.terminate();
        slots[i] = s;
      })
      .catch((err) => log.error({ err }, 'inference worker could not be replaced'))
      .finally(() => {
        replacing--;
        pump();
      });
  };

  const pump = () => {
    for (const slot of slots) {
      if (!slot.alive || slot.batch || queue.length === 0) continue;
      const requests = queue.splice(0, batchRequests);
      slot.batch = { id: nextBatch++, requests };
      const msg: ToWorker = {
        type: 'run',
        batchId: slot.batch.id,
        requests: requests.map((r) => ({ input: r.input, flag: r.flag.buffer as SharedArrayBuffer })),
      };
      slot.worker.postMessage(msg);
    }
    if (queue.length && replacing === 0 && !slots.some((s) => s.alive)) {
      for (const r of queue.splice(0)) settle(r, () => r.reject(new AppError('model_unavailable', 'no inference worker is running', { expose: true })));
    }
  };

  const cancel = (r: Request, why: 'timeout' | 'aborted') => {
    if (r.settled) return;
    Atomics.store(r.flag, 0, why === 'timeout' ? FLAG_TIMEOUT : FLAG_ABORTED);
    const qi = queue.indexOf(r);
    if (qi >= 0) queue.splice(qi, 1);
    settle(r, () => r.reject(new InferenceCancelledError(why)));
    const slot = slots.find((s) => s.batch?.requests.includes(r));
    if (slot?.batch && slot.batch.requests.every((x) => x.settled) && !slot.batch.grace) {
      // The worker stops at its next step; if a single long run keeps it busy past the grace, replace it.
      slot.batch.grace = setTimeout(() => {
        log.warn('inference worker did not stop after cancel; terminating it');
        void slot.worker.terminate();
      }, grace);
    }
  };

  const exam = (input: ExamInput, opts: RunOptions = {}): Promise<Answer[]> => {
    if (closed) return Promise.reject(new AppError('model_unavailable', 'the inference engine is closed', { expose: true }));
    if (queue.length >= queueLimit) return Promise.reject(new EngineOverloadedError(queue.length));
    if (opts.signal?.aborted) return Promise.reject(new InferenceCancelledError('aborted'));
    return new Promise<Answer[]>((resolve, reject) => {
      const timer = setTimeout(() => cancel(r, 'timeout'), opts.timeoutMs ?? defaultTimeout);
      const onAbort = () => cancel(r, 'aborted');
      const r: Request = {
        input,
        flag: new Int32Array(new SharedArrayBuffer(4)),
        settled: false,
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
        },
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(r);
      pump();
    });
  };

  try {
    for (let i = 0; i < workers; i++) slots.push(await start());
  } catch (err) {
    closed = true;
    await Promise.all(slots.map((s) => s.worker.terminate()));
    throw err instanceof AppError ? err : new ModelLoadError('worker_failed', String(err), { cause: err });
  }
  log.info({ model: info!.name, version: info!.version, executionProvider: info!.executionProvider, workers }, 'model loaded');

  return {
    info: info!,
    exam,
    async generate(input: GenerateInput, opts?: RunOptions): Promise<Answer> {
      const q = { id: 'generate', text: input.prompt, answer: { kind: 'text' as const, maxNewTokens: input.maxNewTokens } };
      const [a] = await exam({ images: input.images, systemMessage: input.systemMessage, questions: [q] }, opts);
      return a;
    },
    status(): EngineStatus {
      if (closed) return { state: 'closed' };
      if (!slots.some((s) => s.alive)) return { state: 'unavailable', info: info!, reason: 'no inference worker is running' };
      return { state: 'ready', info: info!, busyWorkers: slots.filter((s) => s.batch).length, queued: queue.length };
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const r of queue.splice(0)) settle(r, () => r.reject(new AppError('model_unavailable', 'the inference engine is closing', { expose: true })));
      for (const s of slots) for (const r of s.batch?.requests ?? []) cancel(r, 'aborted');
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
