/**
 * The hook use-case: is it an eye matter, may this client name that FHIR server, what evidence is there
 * (listed from prefetch first, no pixels), and is it analysed already? A finished analysis is answered at
 * once; otherwise the analysis starts in the background (analysis/pipeline.ts) and the hook answers "in
 * progress" (or waits `waitMs`). Without a loaded model it answers with no cards — it never invents findings.
 */
import { analysisSubject, clientSubject, waitFor, type AnalysisCache, type AnalysisEntry } from '../analysis/analysis-cache.js';
import type { AssessPlanStageDeps } from '../analysis/assess-plan-stage.js';
import { listEvidence, type GatherEvidenceDeps } from '../analysis/gather-evidence.js';
import { NoUsableImages } from '../analysis/no-usable-images.js';
import { analysisFor, type JobAccess } from '../analysis/pipeline.js';
import { DEFAULT_EHR_TOKEN_LIFETIME_S, parseFhirAuthorization } from '../fhir/token-source.js';
import { AppError } from '../errors.js';
import { fhirClientForHook } from '../fhir/hook-client.js';
import type { FindingsConfig } from '../findings/config.js';
import type { Logger } from '../log.js';
import type { VlmEngine } from '../model/runtime/types.js';
import type { GuardedFetch } from '../net/guarded-fetch.js';
import { buildAnalysisCard, buildPendingCard, buildUnassessedCard, buildUnavailableCard, type CardContext } from './cards.js';
import { hookConcernsEyes, isEyeOrder, orderRefs, ordersInScope } from './eye-orders.js';
import { addsOrders, mergeOrders } from '../analysis/orders.js';
import type { CdsRequest } from './request-schema.js';
import type { CdsCard, CdsResponse, HookHandler } from './types.js';

export interface HookHandlerDeps {
  log: Logger;
  /** The service's public base URL (cards link to its model-card page and SMART app). */
  publicUrl: string;
  /** The outbound fetch (allowlist + address checks): FHIR servers, PACS. */
  fetch: GuardedFetch;
  /**
   * Whether the client identified by the verified JWT `iss` is bound to this FHIR server (its configured
   * `fhirServers`, FHIR servers only, never a PACS or token URL). Unsigned calls (`iss` undefined) never are.
   */
  isFhirServerAllowed: (url: string, iss: string | undefined) => boolean;
  pacs?: GatherEvidenceDeps['pacs'];
  /** The loaded model, or null when none is configured or it failed to load. */
  engine: () => VlmEngine | null;
  findings: FindingsConfig;
  /** Finished and running analyses (see analysis-cache.ts). */
  analyses: AnalysisCache;
  /** How long a hook call waits for a running analysis before answering with the pending outcome (0: never waits). */
  waitMs: number;
  /** While the analysis runs: an info card saying so (default), or no card. */
  pendingOutcome?: 'card' | 'none';
  maxTiles?: number;
  now?: () => Date;
  /** Image-check settings for evidence gathering: pixel worker pool, pixel cap per call. */
  imaging?: Pick<GatherEvidenceDeps, 'pixels' | 'maxStudyPixels'>;
  /** When images were found but none could be assessed, say so in an info card (default true). */
  unassessedImagesCard?: boolean;
  /** VOLMO's own assessment and plan as a second stage (VOLMO_ASSESS_PLAN); absent = off. */
  assessPlan?: AssessPlanStageDeps;
}

/** The hook's FHIR server when this EHR may use it, else undefined (then prefetch alone is used, nothing is sent). */
function allowedFhirServer(request: CdsRequest, iss: string | undefined, deps: HookHandlerDeps, serviceId: string): string | undefined {
  if (request.fhirServer === undefined) return undefined;
  if (deps.isFhirServerAllowed(request.fhirServer, iss)) return request.fhirServer;
  deps.log.warn({ service: serviceId }, 'hook call names a FHIR server this EHR may not use: prefetch only, no request sent');
  return undefined;
}

export function createHookHandler(deps: HookHandlerDeps): HookHandler {
  const images = { fetch: deps.fetch, pacs: deps.pacs, ...deps.imaging };
  return async (request, service, { signal, iss }) => {
    // Not an eye order: nothing to say, and nothing is read (no FHIR, no PACS, no model).
    if (!hookConcernsEyes(request.hook, request.context)) return { cards: [] };
    const engine = deps.engine();
    if (!engine) return { cards: [] };
    const { patientId, encounterId } = request.context;
    const random = engine.info.random;
    const cards: Omit<CardContext, 'analysisId'> = { publicUrl: deps.publicUrl, patientId, eyeOrders: ordersInScope(request.context, request.hook).filter(isEyeOrder) };
    if (request.fhirAuthorizationUnusable) deps.log.warn({ service: service.id, reason: request.fhirAuthorizationUnusable }, 'fhirAuthorization not used: prefetch only');
    const fhirServer = allowedFhirServer(request, iss, deps, service.id);
    const fhir = fhirServer ? fhirClientForHook({ ...request, fhirServer }, { fetch: deps.fetch, logger: deps.log }) : undefined;

    const listed = await listEvidence({ patientId, encounterId, prefetch: request.prefetch, fhir, signal }, { pacsConfigured: deps.pacs !== undefined }).catch((e: unknown) => {
      if (signal.aborted) return undefined;
      throw e;
    });
    if (!listed || signal.aborted) {
      deps.log.warn({ service: service.id }, 'listing the evidence took longer than the hook deadline: no AI review this time');
      return say(deps, buildUnavailableCard("the patient's records could not be read in time", random, cards));
    }
    if (listed.context.problems.some((p) => p.source === 'patient' && p.severity === 'error')) {
      throw new AppError('bad_request', 'the patient could not be read from prefetch or the FHIR server', { status: 412, expose: true });
    }
    if (listed.refs.length === 0) {
      deps.log.info({ service: service.id }, 'no retinal images listed: no AI analysis');
      return { cards: [] };
    }
    // Whose analysis: the FHIR base this client is bound to, or — for a client bound to none, or a server it may
    // not name — the client alone, a subject no SMART launch ever matches (prefetch-only evidence is never
    // filed under a FHIR server the client was not bound to).
    const subject = fhirServer ? analysisSubject(fhirServer, patientId) : clientSubject(iss, patientId);
    const pipeline = { log: deps.log, engine, findings: deps.findings, analyses: deps.analyses, images, maxTiles: deps.maxTiles, now: deps.now, assessPlan: deps.assessPlan };
    const access = fhir && fhirServer ? hookAccess(fhirServer, request.fhirAuthorization, deps.now?.().getTime() ?? Date.now()) : undefined;
    const orders = orderRefs(cards.eyeOrders ?? []);
    const entry = await analysisFor(pipeline, { subject, patientId, encounterId, listed, fhir, ...(access ? { access } : {}), ...(orders.length ? { orders } : {}) });
    const outcome = await settled(entry, deps.waitMs, signal);
    // The same images analysed for an earlier order: this order is added to the draft's orders (in place, same id).
    if (outcome.result && addsOrders(outcome.result.orders, orders)) deps.analyses.update(entry.id, { ...outcome.result, orders: mergeOrders(outcome.result.orders, orders) });
    return answer(deps, entry, outcome, { ...cards, analysisId: entry.id }, { random, images: listed.refs.length });
  };
}

/** The hook's token for a job that reads its attachments later (sealed in the job; never used past its own expiry). */
function hookAccess(fhirServer: string, fhirAuthorization: unknown, now: number): JobAccess | undefined {
  if (fhirAuthorization === undefined) return undefined;
  const auth = parseFhirAuthorization(fhirAuthorization);
  return { kind: 'token', fhirServer, token: auth.access_token, expiresAt: now + (auth.expires_in ?? DEFAULT_EHR_TOKEN_LIFETIME_S) * 1000 };
}

/** The entry's outcome once it is known, or after waiting at most `ms`: a result, a failure, or nothing yet. */
async function settled(entry: AnalysisEntry, ms: number, signal: AbortSignal): Promise<{ result?: AnalysisEntry['result']; error?: unknown }> {
  if (entry.result) return { result: entry.result };
  if (entry.failure) return { error: entry.failure.error };
  if (ms <= 0 && entry.job) return {}; // nothing to wait for: do not start following the job
  try {
    return { result: await waitFor(entry.promise, ms, signal) };
  } catch (error) {
    return { error };
  }
}

function answer(deps: HookHandlerDeps, entry: AnalysisEntry, outcome: { result?: AnalysisEntry['result']; error?: unknown }, ctx: CardContext, o: { random: boolean; images: number }): CdsResponse {
  if (outcome.result) return { cards: [buildAnalysisCard(outcome.result, ctx)] };
  if (outcome.error instanceof NoUsableImages) {
    // Images were found but none could be assessed: how many and why, in words ("no images" looks different).
    return say(deps, buildUnassessedCard(outcome.error.problems, o.random, ctx));
  }
  if (outcome.error !== undefined) {
    deps.log.warn({ analysis: entry.id, code: (outcome.error as { code?: string }).code }, 'analysis failed: the next hook retries');
    return say(deps, buildUnavailableCard('the analysis failed; retried on the next chart action', o.random, ctx));
  }
  return { cards: deps.pendingOutcome === 'none' ? [] : [buildPendingCard(o.images, o.random, ctx)] };
}

/** An informational card about why there is no review, unless the site turned those off. */
function say(deps: HookHandlerDeps, card: CdsCard | undefined): CdsResponse {
  return { cards: card && deps.unassessedImagesCard !== false ? [card] : [] };
}
