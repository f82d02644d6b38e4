/**
 * Composition root: configuration -> real adapters -> createApp -> listen. The only place that wires
 * concrete implementations together. Starts the local EHR sandbox first when the profile asks for it.
 */
import { CDS_SERVICES } from '../cds-hooks/index.js';
import { createHookHandler } from './cds/hook-handler.js';
import { AnalysisCache } from './analysis/analysis-cache.js';
import { MemoryFeedbackSink } from './cds/feedback-log.js';
import { CdsJwtVerifier, type TrustedCdsClient } from './cds/jwt-verifier.js';
import { MemoryReplayCache } from './cds/replay-cache.js';
import type { Config } from './config.js';
import { createApp, type ReadinessCheck } from './http/app.js';
import { createMetrics } from './http/metrics.js';
import { bind } from './http/server.js';
import type { Logger } from './log.js';
import { resolveFindingsConfig } from './findings/config.js';
import type { VlmEngine } from './model/runtime/types.js';
import { createGuardedFetch } from './net/guarded-fetch.js';
import { createLaunchRouter } from '../launch/launch-router.js';
import { generateServiceKey, loadServiceKey, publicJwks } from './fhir/service-keys.js';
import type { Sandbox } from './sandbox/index.js';
import type { JSONWebKeySet } from 'jose';

export interface RunningService {
  url: string;
  sandbox: Sandbox | null;
  close(): Promise<void>;
}

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const server = await bind(config.host, config.port, log);
  // Port 0 (tests, demos): the public URL is only known once the port is bound.
  const publicUrl = config.publicUrl.endsWith(':0') ? server.url : config.publicUrl;
  config = Object.freeze({ ...config, publicUrl });
  const serviceKey = config.serviceKeyFile ? await loadServiceKey({ file: config.serviceKeyFile }) : await generateServiceKey('ES384');
  if (!config.serviceKeyFile) log.info('VOLMO_SERVICE_KEY_FILE unset: generated an ephemeral signing key (its JWKS changes at every start; fine for the sandbox only)');
  let sandbox: Sandbox | null = null;
  const cdsClients: TrustedCdsClient[] = config.cdsClients.map((c) => ({ ...c, jwks: c.jwks as TrustedCdsClient['jwks'] }));
  const outbound = [...config.fhirAllowlist, ...config.smartAuthAllowlist, ...config.pacsAllowlist, ...(config.pacsUrl ? [config.pacsUrl] : [])];
  if (config.sandbox) {
    const { startSandbox } = await import('./sandbox/index.js');
    try {
      sandbox = await startSandbox({ config, log: log.child({ component: 'sandbox' }), backendJwks: publicJwks(serviceKey) as JSONWebKeySet });
    } catch (e) {
      await server.close(0);
      throw e;
    }
    cdsClients.push(sandbox.trustedCdsClient);
    outbound.push(sandbox.fhirBaseUrl, sandbox.authIssuer, ...(sandbox.dicomWebUrl ? [sandbox.dicomWebUrl] : []));
  }

  const metrics = createMetrics();
  const fetch = createGuardedFetch({ allow: outbound, timeoutMs: 15_000, logger: log.child({ component: 'net' }) });
  const verifier = config.cdsRequireJwt
    ? new CdsJwtVerifier({ clients: cdsClients, replay: new MemoryReplayCache(), clockSkewSeconds: config.jwtClockSkewSeconds })
    : null;
  if (sandbox && !config.modelDir && config.sandboxModel === 'tiny') {
    const { ensureTinyModel } = await import('./sandbox/tiny-model.js');
    config = Object.freeze({ ...config, modelDir: await ensureTinyModel(config.sandboxStateDir, log) });
  }
  const model = await loadModel(config, log);
  metrics.modelReady.set(model.engine ? 1 : 0);
  const readiness: ReadinessCheck[] = [{ name: 'model', check: async () => model.status() }];
  if (sandbox) readiness.push(...sandbox.readiness);

  const analyses = new AnalysisCache({ ttlMs: config.analysisTtlMs, maxEntries: 1000 });
  const app = createApp({
    config,
    log,
    metrics,
    readiness,
    jwks: async () => publicJwks(serviceKey),
    cds: {
      services: CDS_SERVICES,
      verifier,
      handler: createHookHandler({
        log: log.child({ component: 'cds' }),
        fetch,
        pacs: config.pacsUrl ? { baseUrl: config.pacsUrl, auth: config.pacsAuth } : sandbox?.dicomWebUrl ? { baseUrl: sandbox.dicomWebUrl } : undefined,
        engine: () => model.engine,
        findings: resolveFindingsConfig({ tasks: config.tasks, assessPlanHistory: config.assessPlanHistory }),
        analyses,
        waitMs: config.hookWaitMs,
        maxTiles: config.maxTiles,
      }),
      feedback: new MemoryFeedbackSink(log),
      hookTimeoutMs: config.inferenceTimeoutMs,
    },
    extraRouters: [
      createLaunchRouter({
        publicUrl: config.publicUrl,
        clientId: config.smartClientId,
        scopes: config.smartScopes,
        fetch,
        fhirServers: [...config.fhirAllowlist, ...(sandbox ? [sandbox.fhirBaseUrl] : [])],
        analyses,
        log: log.child({ component: 'smart' }),
      }),
    ],
  });
  server.setHandler(app);
  log.info({ url: server.url, publicUrl: config.publicUrl, profile: config.profile, sandbox: Boolean(sandbox), cdsJwt: Boolean(verifier) }, 'volmo-cds listening');
  if (!verifier) log.warn('VOLMO_CDS_REQUIRE_JWT=false: unsigned hook calls are accepted (never do this in production)');

  return {
    url: server.url,
    sandbox,
    async close() {
      await server.close(config.shutdownGraceMs);
      await model.engine?.close();
      fetch.close();
      await sandbox?.stop();
    },
  };
}

interface LoadedModel {
  engine: VlmEngine | null;
  status(): { ok: boolean; detail: string };
}

/** Loads the configured model; a model that fails to load leaves the service up, and /readyz says why. */
async function loadModel(config: Config, log: Logger): Promise<LoadedModel> {
  if (!config.modelDir) {
    return { engine: null, status: () => ({ ok: true, detail: 'no model configured (VOLMO_MODEL_DIR unset): hooks answer without AI findings' }) };
  }
  const { createEngine } = await import('./model/runtime/engine.js');
  try {
    const engine = await createEngine({
      modelDir: config.modelDir,
      executionProvider: config.executionProvider,
      workers: config.modelWorkers,
      timeoutMs: config.inferenceTimeoutMs,
      log: log.child({ component: 'model' }),
    });
    const { info } = engine;
    log.info({ model: info.name, version: info.version, ep: info.executionProvider, dtype: info.dtype, random: info.random }, info.random ? 'model loaded: TEST MODEL WITH RANDOM WEIGHTS — outputs are not clinical' : 'model loaded');
    const detail = `${info.name} ${info.version} on ${info.executionProvider}${info.random ? ' (TEST MODEL WITH RANDOM WEIGHTS — not clinical)' : ''}`;
    return { engine, status: () => ({ ok: engine.status().state === 'ready', detail }) };
  } catch (e) {
    const detail = `model failed to load: ${(e as Error).message}`;
    log.error({ err: e }, detail);
    return { engine: null, status: () => ({ ok: false, detail }) };
  }
}
