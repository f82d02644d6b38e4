/** The single place where errors become HTTP responses (OperationOutcome bodies; bare 401 for CDS auth). */
import type { ErrorRequestHandler } from 'express';
import { AppError, isAppError } from '../errors.js';
import type { Logger } from '../log.js';

const ISSUE_CODE: Record<number, string> = { 400: 'invalid', 401: 'login', 403: 'forbidden', 404: 'not-found', 409: 'conflict', 412: 'incomplete', 413: 'too-costly', 415: 'not-supported', 429: 'throttled', 503: 'transient', 504: 'timeout' };

export function operationOutcome(status: number, message: string): Record<string, unknown> {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: status >= 500 ? 'fatal' : 'error', code: ISSUE_CODE[status] ?? 'exception', diagnostics: message }],
  };
}

/** Maps body-parser and other framework errors onto the service's error vocabulary. */
export function normaliseError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { type?: string; status?: number; message?: string };
  if (e?.type === 'entity.parse.failed') return new AppError('bad_request', 'request body is not valid JSON');
  if (e?.type === 'entity.too.large') return new AppError('payload_too_large', 'request body too large');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new AppError('unsupported_media_type', 'unsupported body encoding');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return new AppError('bad_request', 'bad request', { status: e.status });
  return new AppError('internal', 'internal error', { cause: err });
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const appErr = normaliseError(err);
    // Route patterns only: a raw path can carry identifiers.
    const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
    if (appErr.status >= 500) log.error({ err, route, code: appErr.code }, 'request failed');
    else log.info({ route, code: appErr.code }, 'request rejected');
    if (res.headersSent) return;
    // A refused request whose body was never read: close the connection instead of draining the body.
    if (!req.complete) res.set('Connection', 'close');
    if (appErr.status === 401) {
      res.status(401).set('WWW-Authenticate', 'Bearer').end();
      return;
    }
    const message = appErr.expose ? appErr.message : 'internal error';
    res.status(appErr.status).type('application/json').json(operationOutcome(appErr.status, message));
  };
}
