/** Messages between the engine (main thread) and an inference worker. Plain, structured-clonable data. */
import type { ModelLoadReason } from './load-error.js';
import type { ExecutionProvider } from './onnx-session.js';
import type { Answer, ExamInput, ModelInfo } from './types.js';

export interface WorkerInit {
  backendModule: string;
  modelDir: string;
  executionProvider: ExecutionProvider;
  threads: number;
  verifyChecksums: boolean;
  logLevel: string;
}

/** Cancel flag values in a request's shared Int32Array[1]. */
export const FLAG_RUNNING = 0;
export const FLAG_ABORTED = 1;
export const FLAG_TIMEOUT = 2;

export interface WireError {
  code: string;
  message: string;
  reason?: string;
  file?: string;
}

export type ToWorker =
  | { type: 'run'; batchId: number; requests: { input: ExamInput; flag: SharedArrayBuffer }[] }
  | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'load_failed'; error: WireError }
  | { type: 'done'; batchId: number; results: ({ ok: true; answers: Answer[] } | { ok: false; error: WireError })[] }
  | { type: 'log'; line: string }
  | { type: 'closed' };

export function toWireError(err: unknown): WireError {
  const e = err as { code?: unknown; message?: unknown; reason?: unknown; file?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : 'internal',
    message: typeof e?.message === 'string' ? e.message : String(err),
    reason: typeof e?.reason === 'string' ? e.reason : undefined,
    file: typeof e?.file === 'string' ? e.file : undefined,
  };
}

export type { ModelLoadReason };
