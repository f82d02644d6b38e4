import { AppError } from '../../errors.js';

/** Why a model directory could not be loaded; shown by `/readyz`. */
export type ModelLoadReason =
  | 'missing_file'
  | 'checksum_mismatch'
  | 'invalid_manifest'
  | 'corrupt_graph'
  | 'graph_mismatch'
  | 'worker_failed'
  /** onnxruntime's telemetry switch was not in the process environment (src/platform/no-telemetry.ts). */
  | 'telemetry_on';

/**
 * A model that cannot be loaded. Code `model_unavailable` (503); the message names the file and the
 * reason but never holds patient data, so it may be exposed.
 */
export class ModelLoadError extends AppError {
  readonly reason: ModelLoadReason;
  readonly file: string | undefined;

  constructor(reason: ModelLoadReason, message: string, options: { file?: string; cause?: unknown } = {}) {
    super('model_unavailable', message, { cause: options.cause, expose: true });
    this.name = 'ModelLoadError';
    this.reason = reason;
    this.file = options.file;
  }
}
