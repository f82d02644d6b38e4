import { AppError } from '../../errors.js';

/** Inference stopped by its deadline or by the caller; code `timeout` (503). */
export class InferenceCancelledError extends AppError {
  readonly reason: 'timeout' | 'aborted';

  constructor(reason: 'timeout' | 'aborted') {
    super('timeout', reason === 'timeout' ? 'inference exceeded its time budget and was cancelled' : 'inference was cancelled by the caller', {
      expose: true,
    });
    this.name = 'InferenceCancelledError';
    this.reason = reason;
  }
}

/** What cancellation needs of a signal: an AbortSignal fits, and so does a worker's shared-memory flag. */
export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
}

/** Throws InferenceCancelledError when `signal` has fired; a TimeoutError reason counts as a timeout. */
export function throwIfCancelled(signal: CancelSignal | undefined): void {
  if (!signal?.aborted) return;
  throw new InferenceCancelledError(isTimeoutReason(signal.reason) ? 'timeout' : 'aborted');
}

export function isTimeoutReason(reason: unknown): boolean {
  return (reason as { name?: string } | undefined)?.name === 'TimeoutError' || reason === 'timeout';
}
