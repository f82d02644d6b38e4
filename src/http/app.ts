/** createApp(deps): middleware order, routes, error handler last. No I/O is constructed here. */
import { jobKindOfKey } from '../analysis/job-kinds.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type Express, type RequestHandler } from 'express';
import type { Config } from '../config.js';
import { cdsRoutes, type CdsRoutesDeps } from '../cds/routes.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { errorHandler } from './error-handler.js';
import type { Metrics } from './metrics.js';
import { JOB_STATES, type AuditTrail, type JobQueue, type JobState } from '../store/port.js';

export interface ReadinessCheck {
  name: string;
  /** Resolves with a short reason; `ok: false` makes /readyz answer 503. Never includes secrets. */
  check(): Promise<{ ok: boolean; detail?: string }>;
}

export interface AppDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  cds: Omit<CdsRoutesDeps, 'log' | 'metrics' | 'publicUrl' | 'bodyLimits'>;
  readiness: ReadinessCheck[];
  /** Public keys of this service (SMART Backend Services client keys), served at /.well-known/jwks.json. */
  jwks?: () => Promise<{ keys: unknown[] }>;
  /** Background jobs on a durable store (operator listing /admin/jobs). */
  jobs?: Pick<JobQueue, 'list'>;
  /** The write-back audit trail (operator listing /admin/audit). */
  audit?: Pick<AuditTrail, 'list'>;
  /** Extra routers mounted before the error handler (SMART launch, app API, sandbox pages). */
  extraRouters?: express.Router[];
}

function accessLog(log: Logger, metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      // Route patterns only (never URLs with ids or query strings: they can hold PHI).
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      metrics.httpDuration.observe({ method: req.method, route }, seconds);
      log.info({ method: req.method, route, status: res.statusCode, ms: Math.round(seconds * 1000) }, 'request');
    });
    next();
  };
}

function cors(origins: string[]): RequestHandler {
  return (req, res, next) => {
    const origin = req.get('origin');
    if (origin && (origins.includes(origin) || origins.includes('*'))) {
      res.set({
        'Access-Control-Allow-Origin': origin,
        Vary: 'Origin',
        'Access-Control-Allow-Headers': 'Authorization, Content-Type',
        'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
        'Access-Control-Max-Age': '600',
      });
    }
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next();
  };
}

const sha256 = (v: string) => createHash('sha256').update(v).digest();

/**
 * Operator endpoints: with an operator token, a matching bearer token (compared in constant time);
 * without one (the sandbox), loopback callers only.
 */
export function operatorOnly(token: string | undefined): RequestHandler {
  const expected = token === undefined ? undefined : sha256(token);
  return (req, _res, next) => {
    if (expected) {
      const given = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
      next(given !== undefined && timingSafeEqual(sha256(given), expected) ? undefined : new AppError('unauthorized', 'operator token required'));
      return;
    }
    const peer = req.socket.remoteAddress ?? '';
    const loopback = peer === '::1' || /^(?:::ffff:)?127\./.test(peer);
    next(loopback ? undefined : new AppError('forbidden', 'operator endpoints answer loopback callers only unless VOLMO_OPERATOR_TOKEN is set'));
  };
}

export function createApp(deps: AppDeps): Express {
  const { config, log, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(accessLog(log, metrics));
  app.use(cors(config.corsOrigins));
  // No body parser here: a route reads its body itself, after authentication (src/http/bounded-json.ts).

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'alive' });
  });

  app.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      deps.readiness.map(async (c) => {
        try {
          return { name: c.name, ...(await c.check()) };
        } catch (e) {
          return { name: c.name, ok: false, detail: (e as Error).message };
        }
      }),
    );
    const ready = results.every((r) => r.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: results });
  });

  app.get('/metrics', operatorOnly(config.operatorToken), async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/admin/feedback', operatorOnly(config.operatorToken), async (req, res) => {
    const since = typeof req.query.since === 'string' ? new Date(req.query.since) : undefined;
    if (since && Number.isNaN(since.getTime())) throw new AppError('bad_request', 'since must be an ISO 8601 date-time');
    const limit = Math.min(Number(req.query.limit ?? 1000) || 1000, 10_000);
    res.set('Cache-Control', 'no-store').json({ feedback: await deps.cds.feedback.list({ since, limit }) });
  });

  // The write-back audit trail, oldest first (?since=ISO, ?analysis=<id>): who, what, when, which analysis, the EHR's answer; ids only.
  app.get('/admin/audit', operatorOnly(config.operatorToken), async (req, res) => {
    const since = typeof req.query.since === 'string' ? new Date(req.query.since) : undefined;
    if (since && Number.isNaN(since.getTime())) throw new AppError('bad_request', 'since must be an ISO 8601 date-time');
    const analysis = req.query.analysis;
    if (analysis !== undefined && (typeof analysis !== 'string' || !/^[A-Za-z0-9\-.]{1,128}$/.test(analysis))) throw new AppError('bad_request', 'analysis must be an analysis id');
    const limit = Math.min(Number(req.query.limit ?? 1000) || 1000, 10_000);
    const events = deps.audit ? await deps.audit.list({ ...(since ? { since: since.getTime() } : {}), ...(analysis ? { analysisId: analysis } : {}), limit }) : [];
    res.set('Cache-Control', 'no-store').json({ audit: events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) });
  });

  // Jobs by state (e.g. ?state=dead): ids, kinds (analysis, assess-plan, draft-writeback), attempts, error kinds and times; never payloads or details (PHI).
  app.get('/admin/jobs', operatorOnly(config.operatorToken), async (req, res) => {
    const state = req.query.state;
    if (state !== undefined && !JOB_STATES.includes(state as JobState)) throw new AppError('bad_request', `state must be one of ${JOB_STATES.join(', ')}`);
    const limit = Math.min(Number(req.query.limit ?? 100) || 100, 1000);
    const jobs = deps.jobs ? await deps.jobs.list({ state: state as JobState | undefined, limit }) : [];
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    res.set('Cache-Control', 'no-store').json({
      jobs: jobs.map((j) => ({
        id: j.id,
        kind: jobKindOfKey(j.key),
        state: j.state,
        attempts: j.attempts,
        maxAttempts: j.maxAttempts,
        errorKind: j.errorKind,
        analysisId: j.analysisId,
        createdAt: iso(j.createdAt),
        updatedAt: iso(j.updatedAt),
        ...(j.state === 'queued' ? { runAt: iso(j.runAt) } : {}),
        ...(j.state === 'running' ? { leaseUntil: iso(j.leaseUntil) } : {}),
      })),
    });
  });

  if (deps.jwks) {
    const jwks = deps.jwks;
    app.get('/.well-known/jwks.json', async (_req, res) => {
      res.set('Cache-Control', 'public, max-age=300').json(await jwks());
    });
  }

  const bodyLimits = { maxBytes: config.requestBodyLimit, maxDepth: config.requestJsonMaxDepth, maxNodes: config.requestJsonMaxNodes };
  app.use(cdsRoutes({ ...deps.cds, log, metrics, publicUrl: config.publicUrl, bodyLimits }));
  for (const r of deps.extraRouters ?? []) app.use(r);

  app.use((req, _res, next) => next(new AppError('not_found', `no route for ${req.method} on this path`)));
  app.use(errorHandler(log));
  return app;
}
