/** Pure retry timing: exponential backoff with full jitter, and Retry-After parsing (seconds or HTTP date). */

export interface RetryOptions {
  /** Retries after the first attempt (0 = no retry). */
  readonly maxRetries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the call fails instead. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryOptions = Object.freeze({
  maxRetries: 2,
  baseDelayMs: 200,
  maxDelayMs: 2_000,
  maxRetryAfterMs: 5_000,
});

export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 503]);

/** Milliseconds to wait from a Retry-After header value, or undefined if absent/unparsable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Full-jitter exponential backoff for retry number `attempt` (0-based). */
export function backoffDelay(attempt: number, opts: RetryOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** attempt);
  return Math.round(ceiling * (0.5 + random() / 2));
}

/**
 * The wait before the next retry, or undefined when we should not retry (out of retries, or the server
 * asks for a longer wait than we accept).
 */
export function nextRetryDelay(
  attempt: number,
  retryAfterHeader: string | undefined,
  opts: RetryOptions,
  random: () => number = Math.random,
): number | undefined {
  if (attempt >= opts.maxRetries) return undefined;
  const asked = parseRetryAfter(retryAfterHeader);
  if (asked !== undefined) {
    if (asked > opts.maxRetryAfterMs) return undefined;
    return asked + Math.round(random() * Math.min(100, opts.baseDelayMs));
  }
  return backoffDelay(attempt, opts, random);
}
