/**
 * The service's composition root: configuration -> real adapters -> createApp -> listen. The only place that
 * wires concrete implementations together. It knows nothing of the local EHR sandbox: that is a composition
 * root of its own (src/sandbox/service.ts) which starts its servers and then hands this one the same kind
 * of configuration an operator writes (trusted CDS clients, allowlists, a PACS, a model directory).
 */
import { localEngine } from './model-engine.js';
import { CDS_SERVICES } from '../cds-hooks/index.js';
import { createHookHandler } from './cds/hook-handler.js';
import { modelCardRouter } from './cds/model-card.js';
import type { PipelineDeps } from './analysis/pipeline.js';
import type { ServiceKey } from './fhir/service-keys.js';
import type { Metrics } from './http/metrics.js';
import { DicomWebClient } from './imaging/dicomweb-client.js';
import { describeOrigin } from './net/allowlist.js';
import type { GuardedFetch } from './net/guarded-fetch.js';
import type { ImageWatcher } from './watcher/image-watcher.js';
import { backendFhirClient, startWatcher } from './watcher/start-watcher.js';
import { JobRunner } from './analysis/job-runner.js';
import { classifyAnalysisFailure, runAnalysisJob, type JobAccess } from './analysis/pipeline.js';
import { dispatchJob, queueFollowUps, type AnyJobPayload } from './analysis/job-kinds.js';
import { runAssessPlanJob } from './analysis/assess-plan-job.js';
import { backgroundDraftProfile, backgroundWriteScopes, runDraftJob, subjectFhirBase } from './writeback/background.js';
import { BackendServicesTokenSource } from './fhir/backend-services.js';
import type { FhirClient, FhirWriter } from './fhir/client.js';
import { HttpFhirClient } from './fhir/http-client.js';
import { canonicalBaseUrl } from './analysis/analysis-cache.js';
import { AnalysisCache } from './analysis/analysis-cache.js';
import { PixelWorkerPool } from './imaging/pixel-workers.js';
import { assessPlanEnabled, InProcessSecondStage } from './analysis/second-stage.js';
import { CdsJwtVerifier, type TrustedCdsClient } from './cds/jwt-verifier.js';
import type { Config } from './config.js';
import { createApp, type ReadinessCheck } from './http/app.js';
import { createMetrics } from './http/metrics.js';
import { bind, type RunningServer } from './http/server.js';
import type { Logger } from './log.js';
import { resolveFindingsConfig, type FindingsConfig } from './findings/config.js';
import { siteThresholdOverrides } from './findings/site-thresholds.js';
import type { VlmEngine } from './model/runtime/types.js';
import { compileAllowlist, matchAllowlist } from './net/allowlist.js';
import { createGuardedFetch } from './net/guarded-fetch.js';
import { createLaunchRouter } from '../launch/launch-router.js';
import { WritebackService } from './writeback/service.js';
import type { WritebackSettings } from './writeback/profiles.js';
import { generateServiceKey, loadServiceKey, publicJwks } from './fhir/service-keys.js';
import { openStore } from './store/open-store.js';
import type { VolmoStore } from './store/port.js';
import type { JSONWebKeySet } from 'jose';
import { AppError } from './errors.js';

/** Five free-text steps of up to 1,024 tokens each: minutes on a CPU, so the stage gets at least 15 minutes per step. */
const ASSESS_PLAN_MIN_TIMEOUT_MS = 15 * 60_000;

export interface RunningService {
  url: string;
  close(): Promise<void>;
}

/** What a composition root above this one adds besides configuration. */
export interface ServiceExtras {
  /** Readiness checks of servers the service depends on (/readyz reports them). */
  readiness?: ReadinessCheck[];
}

/**
 * The service with its port bound and its signing key loaded, not yet serving (requests are answered 503):
 * what another composition root needs to know before it can configure the service.
 */
export interface OpenService {
  /** The public base URL (the bound port when VOLMO_PORT=0 and the public URL was left at its default). */
  publicUrl: string;
  /** The public half of the Backend Services signing key (what the EHR registers for this service). */
  serviceJwks: JSONWebKeySet;
  /** With VOLMO_SMART_CLIENT_AUTH=private_key_jwt: the public half of the SMART app's assertion key (the service key unless a dedicated one is set). */
  smartClientJwks?: JSONWebKeySet;
  /** Wires and serves; `config` must name the same host, port and key as the one the service was opened with. */
  start(config: Config, extras?: ServiceExtras): Promise<RunningService>;
  close(): Promise<void>;
}

export async function startService(config: Config, log: Logger): Promise<RunningService> {
  const open = await openService(config, log);
  return open.start(config);
}

export async function openService(config: Config, log: Logger): Promise<OpenService> {
  const server = await bind(config.host, config.port, log);
  let serviceKey: ServiceKey;
  let smartClientKey: ServiceKey | undefined;
  try {
    serviceKey = config.serviceKeyFile ? await loadServiceKey({ file: config.serviceKeyFile }) : await generateServiceKey('ES384');
    if (config.smartClientAuth === 'private_key_jwt') smartClientKey = config.smartClientKeyFile ? await loadServiceKey({ file: config.smartClientKeyFile }) : serviceKey;
  } catch (e) {
    await server.close(0);
    throw e;
  }
  if (!config.serviceKeyFile) log.info('VOLMO_SERVICE_KEY_FILE unset: generated an ephemeral signing key (its JWKS changes at every start; fine for the sandbox only)');
  // Port 0 (tests, demos): the public URL is only known once the port is bound.
  const resolvePublicUrl = (c: Config) => (c.publicUrl.endsWith(':0') ? server.url : c.publicUrl);
  return {
    publicUrl: resolvePublicUrl(config),
    serviceJwks: publicJwks(serviceKey) as JSONWebKeySet,
    ...(smartClientKey ? { smartClientJwks: publicJwks(smartClientKey) as JSONWebKeySet } : {}),
    async start(config, extras = {}) {
      // Everything started from here on is stopped again if a later step fails, so a failed start exits.
      const stops: (() => Promise<void> | void)[] = [() => server.close(0)];
      const stopAll = async () => {
        for (const stop of [...stops].reverse()) await Promise.resolve(stop()).catch((e: unknown) => log.warn({ err: e }, 'component failed to stop'));
      };
      try {
        return await wire(Object.freeze({ ...config, publicUrl: resolvePublicUrl(config) }), log, { server, serviceKey, smartClientKey, extras }, stops, stopAll);
      } catch (e) {
        await stopAll();
        throw e;
      }
    },
    close: () => server.close(0),
  };
}

async function wire(
  config: Config,
  log: Logger,
  opened: { server: RunningServer; serviceKey: ServiceKey; smartClientKey?: ServiceKey; extras: ServiceExtras },
  stops: (() => Promise<void> | void)[],
  stopAll: () => Promise<void>,
): Promise<RunningService> {
  const { server, serviceKey, smartClientKey } = opened;
  // What the service keeps (analyses, feedback, JWT replay records, SMART launches and sessions, watcher marks).
  const store = await openStore(config, log);
  stops.push(() => store.close());
  const cdsClients: TrustedCdsClient[] = config.cdsClients.map((c) => ({ ...c, jwks: c.jwks as TrustedCdsClient['jwks'] }));
  /** FHIR servers only: what a hook's fhirServer or a launch's iss may name. */
  const fhirServers = [...config.fhirAllowlist];
  const outbound = [...config.smartAuthAllowlist, ...config.pacsAllowlist, ...(config.pacsUrl ? [config.pacsUrl] : [])];

  const metrics = createMetrics();
  const fetch = createGuardedFetch({ allow: [...fhirServers, ...outbound], timeoutMs: 15_000, logger: log.child({ component: 'net' }) });
  stops.push(() => fetch.close());
  const verifier = config.cdsRequireJwt
    ? new CdsJwtVerifier({ clients: cdsClients, replay: store.replay, clockSkewSeconds: config.jwtClockSkewSeconds })
    : null;
  if (verifier) stops.push(() => verifier.close());
  const model = await loadModel(config, log);
  stops.push(async () => model.engine?.close());
  metrics.modelReady.set(model.engine ? 1 : 0);
  const readiness: ReadinessCheck[] = [{ name: 'model', check: async () => model.status() }, ...(opened.extras.readiness ?? [])];

  // On a durable store, analyses are jobs any replica's runner may claim (one per identity across replicas).
  let runner: JobRunner<AnyJobPayload> | undefined;
  const analyses = new AnalysisCache({
    ttlMs: config.analysisTtlMs,
    maxEntries: 1000,
    ...(store.durable
      ? {
          durable: store.analyses,
          log: log.child({ component: 'analysis' }),
          jobs: { queue: store.jobs, maxAttempts: config.jobMaxAttempts, pollMs: config.jobPollMs, onQueued: () => runner?.poke() },
        }
      : {}),
  });
  stops.push(() => analyses.flush());
  if (store.durable) metrics.observeJobs(() => store.jobs.counts());
  const pixels = new PixelWorkerPool({ size: config.imageWorkers });
  stops.push(() => pixels.close());
  // VOLMO's own assessment and plan: a second stage after the screening result (auto: GPU providers only).
  const assessPlanOn = model.engine !== null && (config.tasks.assessPlan || assessPlanEnabled(config.assessPlan, model.engine.info.executionProvider));
  const findings = findingsConfig(config, model.engine, assessPlanOn, log);
  const secondStage = new InProcessSecondStage({ log: log.child({ component: 'second-stage' }) });
  stops.push(() => secondStage.close());
  log.info({ assessPlan: config.assessPlan, on: assessPlanOn, planRules: config.planRules.version }, assessPlanOn ? 'assessment and plan: second stage on' : 'assessment and plan: off (VOLMO_ASSESS_PLAN)');
  const assessPlan = assessPlanOn && model.engine
    ? { stage: secondStage, engine: model.engine, findings, log: log.child({ component: 'second-stage' }), maxTiles: config.maxTiles, timeoutMs: Math.max(config.inferenceTimeoutMs, ASSESS_PLAN_MIN_TIMEOUT_MS) }
    : undefined;
  const pacs = config.pacsUrl ? { baseUrl: config.pacsUrl, auth: config.pacsAuth } : undefined;
  const writebackSettings: WritebackSettings = { profile: config.writebackProfile, byServer: config.writebackProfiles };
  const writeback = new WritebackService({ store, settings: writebackSettings, log: log.child({ component: 'writeback' }) });
  const fhirAllowlist = compileAllowlist(fhirServers);
  const boundFhirServers = new Map(cdsClients.filter((c) => c.fhirServers?.length).map((c) => [c.iss, compileAllowlist(c.fhirServers!)]));
  const app = createApp({
    config,
    log,
    metrics,
    readiness,
    ...(store.durable ? { jobs: store.jobs } : {}),
    audit: store.audit,
    // The Backend Services key, and the SMART app's assertion key when it is a dedicated one: one JWK Set URL to register.
    jwks: async () => (smartClientKey && smartClientKey !== serviceKey ? publicJwks(serviceKey, smartClientKey) : publicJwks(serviceKey)),
    cds: {
      services: CDS_SERVICES,
      verifier,
      handler: createHookHandler({
        log: log.child({ component: 'cds' }),
        publicUrl: config.publicUrl,
        fetch,
        // A hook may name only a FHIR server its (verified) client is bound to; an unbound client gets prefetch only.
        isFhirServerAllowed: (url, iss) => {
          const bound = iss === undefined ? undefined : boundFhirServers.get(iss);
          return bound !== undefined && isOnAllowlist(bound, url) && isOnAllowlist(fhirAllowlist, url);
        },
        pacs,
        engine: () => model.engine,
        findings,
        analyses,
        ...(assessPlan ? { assessPlan } : {}),
        waitMs: config.hookWaitMs,
        pendingOutcome: config.pendingOutcome,
        maxTiles: config.maxTiles,
        imaging: { pixels, maxStudyPixels: config.maxStudyPixels },
        unassessedImagesCard: config.unassessedImagesCard,
      }),
      feedback: store.feedback,
      hookTimeoutMs: config.hookTimeoutMs,
    },
    extraRouters: [
      modelCardRouter(() => model.engine?.info ?? null),
      createLaunchRouter({
        publicUrl: config.publicUrl,
        clientId: config.smartClientId,
        ...(smartClientKey ? { clientAuth: { kind: 'private_key_jwt' as const, key: smartClientKey } } : {}),
        scopes: config.smartScopes,
        fetch,
        isFhirServerAllowed: (url) => isOnAllowlist(fhirAllowlist, url),
        analyses,
        pending: store.keyed('smart-launch'),
        sessions: store.keyed('smart-session'),
        browsers: store.keyed('smart-browser'),
        frameAncestors: config.appFrameAncestors,
        log: log.child({ component: 'smart' }),
        writeback,
        images: { ...(pacs ? { pacs } : {}), pixels },
      }),
    ],
  });
  server.setHandler(app);
  const watcher = imageWatcher(config, model.engine, {
    store,
    fetch,
    serviceKey,
    metrics,
    log: log.child({ component: 'watcher' }),
    pipeline: { log: log.child({ component: 'analysis' }), findings, analyses, images: { fetch, pacs, pixels, maxStudyPixels: config.maxStudyPixels }, maxTiles: config.maxTiles, assessPlan },
  });
  if (watcher) stops.push(() => watcher.stop());
  if (store.durable && model.engine && config.jobConcurrency > 0) {
    const engine = model.engine;
    const jobLog = log.child({ component: 'jobs' });
    const pipeline: PipelineDeps = { log: log.child({ component: 'analysis' }), engine, findings, analyses, images: { fetch, pacs, pixels, maxStudyPixels: config.maxStudyPixels }, maxTiles: config.maxTiles, assessPlan };
    const fhirFor = jobFhirClients(config, { fetch, serviceKey, log: jobLog });
    // The AI draft written back in the background (VOLMO_WRITEBACK_BACKGROUND), with Backend Services per FHIR base.
    const background = config.writebackBackground ?? [];
    const writerFor = backgroundWriters(config, writebackSettings, background, { fetch, serviceKey, log: jobLog });
    const draftBase = (subject: string) => {
      const base = subjectFhirBase(subject);
      return base && backgroundDraftProfile(writebackSettings, background, base) ? base : undefined;
    };
    if (background.length) jobLog.info({ bases: background.map(describeOrigin) }, 'background draft write-back on: drafts are written when an analysis finishes');
    const followUps = queueFollowUps({ queue: store.jobs, maxAttempts: config.jobMaxAttempts, assessPlan: Boolean(assessPlan), draftBase, log: jobLog, onQueued: () => runner?.poke() });
    runner = new JobRunner<AnyJobPayload>({
      queue: store.jobs,
      handle: dispatchJob({
        analysis: (job, signal) => runAnalysisJob(pipeline, job, { store: store.analyses, fhirFor, signal, followUps }),
        ...(assessPlan ? { assessPlan: (job, signal) => runAssessPlanJob({ ...pipeline, assessPlan }, job, { store: store.analyses, fhirFor, signal }) } : {}),
        draft: (job) => runDraftJob({ writeback, analyses: store.analyses, writerFor, log: jobLog }, job),
      }),
      classify: classifyAnalysisFailure,
      concurrency: config.jobConcurrency,
      leaseMs: config.jobLeaseMs,
      pollMs: config.jobPollMs,
      retryBaseMs: config.jobRetryBaseMs,
      log: jobLog,
      onOutcome: (outcome, kind) => metrics.jobOutcomes.inc({ outcome, kind: kind ?? '' }),
    }).start();
    const r = runner;
    stops.push(() => r.stop(config.shutdownGraceMs));
    jobLog.info({ concurrency: config.jobConcurrency, leaseMs: config.jobLeaseMs }, 'job runner on: this replica runs queued analyses');
  }
  log.info({ url: server.url, publicUrl: config.publicUrl, profile: config.profile, cdsJwt: Boolean(verifier) }, 'volmo-cds listening');
  if (!verifier) log.warn('VOLMO_CDS_REQUIRE_JWT=false: unsigned hook calls are accepted, prefetch only (never do this in production)');
  const unbound = cdsClients.filter((c) => !c.fhirServers?.length).length;
  if (unbound) log.warn({ clients: unbound }, 'CDS clients without fhirServers: their hook calls use prefetch only and their analyses are never shown in the SMART app');

  // Graceful: stop taking requests and let in-flight ones finish first, then the rest.
  stops[0] = () => server.close(config.shutdownGraceMs);
  return { url: server.url, close: stopAll };
}

/** The image watcher when configured (VOLMO_WATCH with VOLMO_WATCH_FHIR_BASE) and a model is loaded. */
function imageWatcher(
  config: Config,
  engine: VlmEngine | null,
  deps: { store: VolmoStore; fetch: GuardedFetch; serviceKey: ServiceKey; metrics: Metrics; log: Logger; pipeline: Omit<PipelineDeps, 'engine'> },
): ImageWatcher | undefined {
  const fhirBaseUrl = config.watchFhirBase;
  if (!config.watch || !engine || !fhirBaseUrl) return undefined;
  const pacs = config.watchPacs && deps.pipeline.images.pacs ? { client: new DicomWebClient({ baseUrl: deps.pipeline.images.pacs.baseUrl, auth: deps.pipeline.images.pacs.auth, fetch: deps.fetch }), identifierSystem: config.watchPatientIdentifierSystem } : undefined;
  deps.log.info({ fhir: describeOrigin(fhirBaseUrl), pacs: Boolean(pacs), intervalMs: config.watchIntervalMs }, 'image watcher on: new eye images are analysed ahead of any hook');
  return startWatcher(
    { fhirBaseUrl, pacs, backendClientId: config.backendClientId, serviceKey: deps.serviceKey, stateFile: config.watchStateFile ?? 'var/watcher-marks.json', intervalMs: config.watchIntervalMs, ...(deps.store.durable && !config.watchStateFile ? { marks: deps.store.marks } : {}) },
    {
      fetch: deps.fetch,
      log: deps.log,
      pipeline: { ...deps.pipeline, engine },
      counters: { seen: (source, n) => deps.metrics.watcherSeen.inc({ source: source.split(' ')[0] }, n), outcome: (outcome) => deps.metrics.watcherPatients.inc({ outcome }) },
    },
  );
}

/**
 * How a job run here reads FHIR attachments again: with the hook's sealed token until its expiry (on an
 * allowlisted FHIR server only), or with this service's Backend Services client for the watcher's server.
 */
function jobFhirClients(config: Config, deps: { fetch: GuardedFetch; serviceKey: ServiceKey; log: Logger }): (access: JobAccess | undefined) => FhirClient | undefined {
  const backend = config.watchFhirBase ? backendFhirClient({ fhirBaseUrl: config.watchFhirBase, backendClientId: config.backendClientId, serviceKey: deps.serviceKey }, deps) : undefined;
  return (access) => {
    if (!access || !deps.fetch.allows(access.fhirServer)) return undefined;
    if (access.kind === 'backend') {
      return backend && canonicalBaseUrl(access.fhirServer) === canonicalBaseUrl(config.watchFhirBase!) ? backend : undefined;
    }
    const { token, expiresAt } = access;
    return new HttpFhirClient({
      baseUrl: access.fhirServer,
      fetch: deps.fetch,
      logger: deps.log,
      tokens: {
        getToken: async () => {
          if (Date.now() >= expiresAt) throw new AppError('upstream_refused', 'the EHR-provided FHIR access token of this job has expired', { expose: true });
          return token;
        },
      },
    });
  };
}

/**
 * This service's writers for background drafts: one FHIR client per base of VOLMO_WRITEBACK_BACKGROUND, with
 * a Backend Services token whose scopes are that base's profile's writes (writeback/background.ts).
 */
function backgroundWriters(config: Config, settings: WritebackSettings, bases: readonly string[], deps: { fetch: GuardedFetch; serviceKey: ServiceKey; log: Logger }): (fhirBase: string) => (FhirClient & FhirWriter) | undefined {
  const clients = new Map<string, HttpFhirClient>();
  for (const base of bases) {
    const profile = backgroundDraftProfile(settings, bases, base);
    if (!profile) continue;
    const tokens = new BackendServicesTokenSource({ fetch: deps.fetch, fhirBaseUrl: base, clientId: config.backendClientId, scope: backgroundWriteScopes(profile), key: deps.serviceKey, logger: deps.log });
    clients.set(canonicalBaseUrl(base), new HttpFhirClient({ baseUrl: base, fetch: deps.fetch, tokens, logger: deps.log }));
  }
  return (fhirBase) => clients.get(canonicalBaseUrl(fhirBase));
}

function isOnAllowlist(list: ReturnType<typeof compileAllowlist>, url: string): boolean {
  try {
    return matchAllowlist(list, new URL(url)) !== undefined;
  } catch {
    return false;
  }
}

/** The findings configuration, with the site's operating points when VOLMO_FINDINGS_THRESHOLDS_FILE names them. */
function findingsConfig(config: Config, engine: VlmEngine | null, assessPlan: boolean, log: Logger): FindingsConfig {
  const t = config.findingsThresholds;
  if (t) {
    log.info({ conditions: Object.keys(t.screening), referableDr: Boolean(t.referableDr), targetSensitivity: t.targetSensitivity }, 'site operating points loaded (VOLMO_FINDINGS_THRESHOLDS_FILE)');
    if (t.model && engine && t.model.manifestSha256 !== engine.info.manifestSha256) {
      log.warn('VOLMO_FINDINGS_THRESHOLDS_FILE was measured on another model build (manifest sha256 differs): re-run volmo eval with this model');
    }
  }
  return resolveFindingsConfig({ tasks: { ...config.tasks, assessPlan }, assessPlanHistory: config.assessPlanHistory, planRules: config.planRules, ...siteThresholdOverrides(t) });
}

interface LoadedModel {
  engine: VlmEngine | null;
  status(): { ok: boolean; detail: string };
}

/** Loads the configured model; a model that fails to load leaves the service up, and /readyz says why. */
async function loadModel(config: Config, log: Logger): Promise<LoadedModel> {
  if (config.inference !== 'local') return loadRemoteModel(config, config.inference, log);
  if (!config.modelDir) {
    return { engine: null, status: () => ({ ok: true, detail: 'no model configured (VOLMO_MODEL_DIR unset): hooks answer without AI findings' }) };
  }
  try {
    const engine = await localEngine({ ...config, modelDir: config.modelDir }, log);
    return loaded(engine, `on ${engine.info.executionProvider}`, log);
  } catch (e) {
    const detail = `model failed to load: ${(e as Error).message}`;
    log.error({ err: e }, detail);
    return { engine: null, status: () => ({ ok: false, detail }) };
  }
}

function loaded(engine: VlmEngine, where: string, log: Logger): LoadedModel {
  const { info } = engine;
  log.info({ model: info.name, version: info.version, ep: info.executionProvider, dtype: info.dtype, random: info.random }, info.random ? 'model loaded: TEST MODEL WITH RANDOM WEIGHTS — outputs are not clinical' : 'model loaded');
  const detail = `${info.name} ${info.version} ${where}${info.random ? ' (TEST MODEL WITH RANDOM WEIGHTS — not clinical)' : ''}`;
  return {
    engine,
    status: () => {
      const s = engine.status();
      return { ok: s.state === 'ready', detail: s.state === 'unavailable' ? `${detail}: ${s.reason}` : detail };
    },
  };
}

/**
 * Remote workers (VOLMO_INFERENCE=<url>,…): through a guarded fetch of their own whose allowlist is the
 * worker URLs (private addresses allowed), so a worker URL never counts as an allowed FHIR server.
 */
async function loadRemoteModel(config: Config, urls: readonly string[], log: Logger): Promise<LoadedModel> {
  const { createRemoteEngine } = await import('./worker/remote-engine.js');
  const fetch = createGuardedFetch({ allow: urls.map((prefix) => ({ prefix, allowPrivateNetwork: true })), timeoutMs: config.inferenceTimeoutMs, maxBytes: 16 * 2 ** 20, logger: log.child({ component: 'net' }) });
  try {
    const remote = await createRemoteEngine({ urls, token: config.workerToken, fetch, log: log.child({ component: 'model' }), timeoutMs: config.inferenceTimeoutMs, attempts: config.inferenceAttempts });
    const engine: VlmEngine = { ...remote, info: remote.info, close: async () => (await remote.close(), fetch.close()) };
    return loaded(engine, `on ${urls.length} remote worker(s)`, log);
  } catch (e) {
    fetch.close();
    const detail = `remote inference unavailable: ${(e as Error).message}`;
    log.error({ err: e }, detail);
    return { engine: null, status: () => ({ ok: false, detail }) };
  }
}
