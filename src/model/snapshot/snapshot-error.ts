import { AppError } from '../../errors.js';

/** A model snapshot (or built model directory) is missing, malformed or inconsistent. */
export class SnapshotError extends AppError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('config_invalid', message, { ...options, expose: true });
    this.name = 'SnapshotError';
  }
}
