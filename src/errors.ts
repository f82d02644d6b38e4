/** One error vocabulary for the whole service; translated to HTTP only in src/http/error-handler.ts. */
export type ErrorCode =
  | 'config_invalid'
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'upstream_timeout'
  | 'upstream_error'
  | 'upstream_refused'
  | 'model_unavailable'
  | 'timeout'
  | 'store_unavailable'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  config_invalid: 500,
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  upstream_timeout: 504,
  upstream_error: 502,
  upstream_refused: 502,
  model_unavailable: 503,
  timeout: 503,
  store_unavailable: 503,
  internal: 500,
};

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Whether `message` may be shown to the caller (never true for messages that could hold PHI). */
  readonly expose: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; expose?: boolean; status?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = options.status ?? STATUS[code];
    this.expose = options.expose ?? this.status < 500;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}
