/** createApp with real parts where cheap (JWT verifier, EHR simulator keys) and a scripted hook handler. */
import { CDS_SERVICES } from '../../cds-hooks/index.js';
import { MemoryFeedbackSink } from '../../src/cds/feedback-log.js';
import { CdsJwtVerifier, type TrustedCdsClient } from '../../src/cds/jwt-verifier.js';
import { MemoryReplayCache } from '../../src/cds/replay-cache.js';
import type { HookHandler } from '../../src/cds/types.js';
import { loadConfig } from '../../src/config.js';
import { createApp, type ReadinessCheck } from '../../src/http/app.js';
import { createMetrics } from '../../src/http/metrics.js';
import { silentLogger } from '../../src/log.js';
import type { EhrSimulator } from '../../src/sandbox/ehr-simulator.js';

export const PUBLIC_URL = 'http://127.0.0.1:8080';

export function buildTestApp(ehr: EhrSimulator, opts: { handler?: HookHandler; readiness?: ReadinessCheck[]; env?: Record<string, string>; clients?: TrustedCdsClient[]; audit?: Parameters<typeof createApp>[0]['audit'] } = {}) {
  const config = loadConfig({ VOLMO_PUBLIC_URL: PUBLIC_URL, VOLMO_SANDBOX: 'false', VOLMO_CORS_ORIGINS: 'http://sandbox.test', ...opts.env });
  const feedback = new MemoryFeedbackSink(silentLogger());
  const calls: unknown[] = [];
  const handler: HookHandler =
    opts.handler ??
    (async (req) => {
      calls.push(req);
      return { cards: [] };
    });
  const app = createApp({
    config,
    log: silentLogger(),
    metrics: createMetrics({ defaultMetrics: false }),
    readiness: opts.readiness ?? [],
    ...(opts.audit ? { audit: opts.audit } : {}),
    cds: {
      services: CDS_SERVICES,
      handler,
      feedback,
      verifier: new CdsJwtVerifier({ clients: opts.clients ?? [{ iss: ehr.iss, jku: [ehr.jku] }], replay: new MemoryReplayCache(), clockSkewSeconds: 30 }),
      hookTimeoutMs: 5_000,
    },
  });
  return { app, feedback, calls };
}
