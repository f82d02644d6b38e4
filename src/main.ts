/**
 * Composition root: configuration -> real adapters -> createApp -> listen. The only place that wires
 * concrete implementations together. Starts the local EHR sandbox first when the profile asks for it.
 */
import { CDS_SERVICES } from '../cds-hooks/index.js';
import { createHookHandler } from './cds/hook-handler.js';
import { MemoryFeedbackSink } from './cds/feedback-log.js';
import { CdsJwtVerifier, type TrustedCdsClient } from './cds/jwt-verifier.js';
import { MemoryReplayCache } from './cds/replay-cache.js';
import type { Config } from './config.js';
import { createApp, type ReadinessCheck } from './http/app.js';
import { createMetrics } from './http/metrics.js';
import { bind } from './http/server.js';
import type { Logger } from './log.js';
import { compileAllowlist, matchAllowlist } from './net/allowlist.js';
import type { Sandbox } from './sandbox/index.js';

export interface RunningService {
  url: string;
  sandbox: Sandbox | null;
  close(): Promise<void>;
}

function isAllowed(url: string, prefixes: string[]): boolean {
  try {
    return matchAllowlist(compileAllowlist(prefixes), new URL(url)) !== undefined;
  } catch {
    return false;
  }
}

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const server = await bind(config.host, config.port, log);
  // Port 0 (tests, demos): the public URL is only known once the port is bound.
  const publicUrl = config.publicUrl.endsWith(':0') ? server.url : config.publicUrl;
  config = Object.freeze({ ...config, publicUrl });
  let sandbox: Sandbox | null = null;
  const cdsClients: TrustedCdsClient[] = config.cdsClients.map((c) => ({ ...c, jwks: c.jwks as TrustedCdsClient['jwks'] }));
  const fhirAllowlist = [...config.fhirAllowlist];
  if (config.sandbox) {
    const { startSandbox } = await import('./sandbox/index.js');
    try {
      sandbox = await startSandbox({ config, log: log.child({ component: 'sandbox' }) });
    } catch (e) {
      await server.close(0);
      throw e;
    }
    cdsClients.push(sandbox.trustedCdsClient);
    fhirAllowlist.push(sandbox.fhirBaseUrl);
  }

  const metrics = createMetrics();
  const verifier = config.cdsRequireJwt
    ? new CdsJwtVerifier({ clients: cdsClients, replay: new MemoryReplayCache(), clockSkewSeconds: config.jwtClockSkewSeconds })
    : null;
  const readiness: ReadinessCheck[] = [
    {
      name: 'model',
      check: async () =>
        config.modelDir ? { ok: false, detail: 'model runtime not wired into the service yet' } : { ok: true, detail: 'no model configured (VOLMO_MODEL_DIR unset): hooks answer without AI findings' },
    },
  ];
  if (sandbox) readiness.push(...sandbox.readiness);

  const app = createApp({
    config,
    log,
    metrics,
    readiness,
    cds: {
      services: CDS_SERVICES,
      verifier,
      handler: createHookHandler({ log: log.child({ component: 'cds' }), isFhirServerAllowed: (u) => isAllowed(u, fhirAllowlist) }),
      feedback: new MemoryFeedbackSink(log),
      hookTimeoutMs: config.inferenceTimeoutMs,
    },
  });
  server.setHandler(app);
  log.info({ url: server.url, publicUrl: config.publicUrl, profile: config.profile, sandbox: Boolean(sandbox), cdsJwt: Boolean(verifier) }, 'volmo-cds listening');
  if (!verifier) log.warn('VOLMO_CDS_REQUIRE_JWT=false: unsigned hook calls are accepted (never do this in production)');

  return {
    url: server.url,
    sandbox,
    async close() {
      await server.close(config.shutdownGraceMs);
      await sandbox?.stop();
    },
  };
}
