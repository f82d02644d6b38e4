/** CDS Hooks HTTP surface: discovery, service invocation and feedback. Thin: parse, verify, call, respond. */
import express, { type Router } from 'express';
import { z } from 'zod';
import type { CdsServiceDefinition } from '../../cds-hooks/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { readJsonBody, type JsonLimits } from '../http/bounded-json.js';
import type { Metrics } from '../http/metrics.js';
import type { CdsJwtVerifier } from './jwt-verifier.js';
import { reasonLabel } from './override-reasons.js';
import { parseCdsRequest } from './request-schema.js';
import type { FeedbackSink, HookHandler } from './types.js';

export interface CdsRoutesDeps {
  services: readonly CdsServiceDefinition[];
  handler: HookHandler;
  feedback: FeedbackSink;
  /** null only when the configuration explicitly allows unsigned calls (sandbox). */
  verifier: CdsJwtVerifier | null;
  publicUrl: string;
  log: Logger;
  metrics: Metrics;
  hookTimeoutMs: number;
  /** Bodies are read only after the JWT is verified, within these limits. */
  bodyLimits: JsonLimits;
}

const coding = z.object({ system: z.string().max(1024).optional(), code: z.string().min(1).max(256), display: z.string().max(1024).optional() });
const overrideReason = z
  .object({ reason: coding.optional(), userComment: z.string().max(4000).optional() })
  .refine((r) => r.reason !== undefined || r.userComment !== undefined, 'needs a reason Coding or a userComment');

const feedbackBody = z.object({
  feedback: z
    .array(
      z.object({
        card: z.string().min(1).max(128),
        outcome: z.enum(['accepted', 'overridden']),
        acceptedSuggestions: z.array(z.object({ id: z.string().min(1).max(128) })).max(100).optional(),
        overrideReason: overrideReason.optional(),
        /** Epic's spelling; an array is taken as its first element. */
        overrideReasons: z.union([overrideReason, z.array(overrideReason).min(1).transform((a) => a[0]!)]).optional(),
        outcomeTimestamp: z.string().datetime({ offset: true }),
        extension: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .min(1)
    .max(1000),
});

export function cdsRoutes(deps: CdsRoutesDeps): Router {
  const router = express.Router();
  const byId = new Map(deps.services.map((s) => [s.id, s]));

  const authenticate = async (authorization: string | undefined, path: string, extraAud: string[] = []) => {
    if (!deps.verifier) return undefined;
    const url = `${deps.publicUrl}${path}`;
    try {
      return await deps.verifier.verify(authorization, [url, ...extraAud]);
    } catch (e) {
      deps.log.warn({ path, reason: (e as { reason?: string }).reason ?? 'verification error' }, 'CDS client JWT refused');
      throw e;
    }
  };

  router.get('/cds-services', async (req, res) => {
    await authenticate(req.get('authorization'), '/cds-services');
    res.json({ services: deps.services });
  });

  router.post('/cds-services/:id', async (req, res) => {
    const service = byId.get(req.params.id);
    if (!service) throw new AppError('not_found', `no CDS service with id ${req.params.id}`);
    const claims = await authenticate(req.get('authorization'), `/cds-services/${service.id}`);
    const request = parseCdsRequest(await readJsonBody(req, deps.bodyLimits), service.hook);
    const signal = AbortSignal.timeout(deps.hookTimeoutMs);
    try {
      const response = await deps.handler(request, service, { signal, iss: claims?.iss });
      deps.metrics.hookCalls.inc({ service: service.id, outcome: 'ok' });
      for (const c of response.cards) deps.metrics.cards.inc({ service: service.id, indicator: c.indicator });
      res.json(response);
    } catch (e) {
      deps.metrics.hookCalls.inc({ service: service.id, outcome: 'error' });
      throw e;
    }
  });

  router.post('/cds-services/:id/feedback', async (req, res) => {
    const service = byId.get(req.params.id);
    if (!service) throw new AppError('not_found', `no CDS service with id ${req.params.id}`);
    // The CDS Hooks sandbox signs feedback with aud = the service URL + /feedback; accept both.
    const serviceUrl = `${deps.publicUrl}/cds-services/${service.id}`;
    await authenticate(req.get('authorization'), `/cds-services/${service.id}/feedback`, [serviceUrl]);
    const parsed = feedbackBody.safeParse(await readJsonBody(req, deps.bodyLimits));
    if (!parsed.success) throw new AppError('bad_request', `invalid feedback: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const items = parsed.data.feedback.map(({ overrideReasons, ...f }) => {
      const reason = f.overrideReason ?? overrideReasons;
      return { ...f, ...(reason ? { overrideReason: reason } : {}) };
    });
    // Count what is new only: a resent batch must not count twice.
    for (const f of await deps.feedback.record(service.id, items)) deps.metrics.feedback.inc({ service: service.id, outcome: f.outcome, reason: reasonLabel(f.overrideReason?.reason) });
    res.status(200).json({});
  });

  return router;
}
