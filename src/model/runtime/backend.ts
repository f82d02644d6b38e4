/**
 * What a worker thread runs: a loaded model that answers batches of exams. The ONNX implementation is
 * `onnx-backend.ts`; tests load a scripted one through `EngineOptions.backendModule`.
 */
import type { Logger } from '../../log.js';
import type { CancelSignal } from './cancel.js';
import type { ExecutionProvider } from './onnx-session.js';
import type { Answer, ExamInput, ModelInfo } from './types.js';

export interface BackendOptions {
  modelDir: string;
  executionProvider: ExecutionProvider;
  threads: number;
  verifyChecksums: boolean;
  log: Logger;
}

/** Per request: its answers, or the error that stopped it (bad image, cancelled, ...). */
export type BatchResult = { ok: true; answers: Answer[] } | { ok: false; error: unknown };

export interface InferenceBackend {
  readonly info: ModelInfo;
  /** Answers several requests together; `signal` fires when every request of the batch is cancelled. */
  runBatch(inputs: readonly ExamInput[], signal: CancelSignal): Promise<BatchResult[]>;
  close(): Promise<void>;
}

export type LoadBackend = (options: BackendOptions) => Promise<InferenceBackend>;
