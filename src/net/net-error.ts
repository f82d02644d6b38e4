/** Typed failures of outbound HTTP. Messages carry only scheme://host:port, never paths, queries or tokens. */
import { AppError, type ErrorCode } from '../errors.js';

export type NetFailure =
  | 'refused_scheme' // not http(s), or credentials in the URL
  | 'refused_allowlist' // scheme/host/port/path not on the allowlist
  | 'refused_address' // resolves to a private/loopback/link-local/metadata/reserved address
  | 'dns_failed'
  | 'timeout'
  | 'aborted' // the caller's signal fired
  | 'too_large' // response body over the byte limit
  | 'too_many_redirects'
  | 'bad_redirect' // 3xx without a usable Location
  | 'http_status' // an error status the caller chose to treat as failure
  | 'bad_body' // HTML instead of JSON, truncated or unparsable body
  | 'network'; // connection refused/reset, TLS failure, truncated transfer

const CODE: Record<NetFailure, ErrorCode> = {
  refused_scheme: 'upstream_refused',
  refused_allowlist: 'upstream_refused',
  refused_address: 'upstream_refused',
  dns_failed: 'upstream_error',
  timeout: 'upstream_timeout',
  aborted: 'upstream_timeout',
  too_large: 'upstream_error',
  too_many_redirects: 'upstream_error',
  bad_redirect: 'upstream_error',
  http_status: 'upstream_error',
  bad_body: 'upstream_error',
  network: 'upstream_error',
};

export class NetError extends AppError {
  readonly reason: NetFailure;
  /** scheme://host:port of the upstream (PHI-free). */
  readonly origin: string;
  readonly upstreamStatus?: number;

  constructor(
    reason: NetFailure,
    origin: string,
    detail: string,
    options: { cause?: unknown; upstreamStatus?: number; code?: ErrorCode } = {},
  ) {
    super(options.code ?? CODE[reason], `${origin}: ${detail}`, { cause: options.cause, expose: false });
    this.name = 'NetError';
    this.reason = reason;
    this.origin = origin;
    if (options.upstreamStatus !== undefined) this.upstreamStatus = options.upstreamStatus;
  }
}
