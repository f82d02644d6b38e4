/**
 * The hook use-case: verify the FHIR server is allowed, gather the evidence (prefetch first), run the
 * VOLMO exam, and answer with a card. Without a loaded model it answers honestly with no cards — it never
 * invents findings. Model runs continue in the background when they take longer than the hook may wait
 * (see analysis-cache.ts); their drafts are kept for the clinician's review.
 */
import { analyseEvidence } from '../analysis/analyse.js';
import { AnalysisCache, analysisKey, analysisSubject, clientSubject, referencesKey, waitFor } from '../analysis/analysis-cache.js';
import { scheduleAssessPlan, type AssessPlanStageDeps } from '../analysis/assess-plan-stage.js';
import { gatherEvidence, type GatherEvidenceDeps, type GatheredEvidence } from '../analysis/gather-evidence.js';
import { AppError } from '../errors.js';
import { fhirClientForHook } from '../fhir/hook-client.js';
import type { FindingsConfig } from '../findings/config.js';
import type { Logger } from '../log.js';
import type { VlmEngine } from '../model/runtime/types.js';
import type { GuardedFetch } from '../net/guarded-fetch.js';
import { hookConcernsEyes, isEyeOrder, ordersInScope } from './eye-orders.js';
import { reasonInWords } from '../imaging/rejection.js';
import { buildAnalysisCard, buildPendingCard, buildUnassessedCard, type CardContext } from './cards.js';
import type { CdsRequest } from './request-schema.js';
import type { CdsResponse, HookHandler } from './types.js';

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
  const taskSet = JSON.stringify(deps.findings);
  return async (request, service, { signal, iss }) => {
    // Not an eye order: nothing to say, and nothing is read (no FHIR, no PACS, no model).
    if (!hookConcernsEyes(request.hook, request.context)) return { cards: [] };
    const engine = deps.engine();
    if (!engine) return { cards: [] };
    const { patientId, encounterId } = request.context;
    if (request.fhirAuthorizationUnusable) deps.log.warn({ service: service.id, reason: request.fhirAuthorizationUnusable }, 'fhirAuthorization not used: prefetch only');
    const fhirServer = allowedFhirServer(request, iss, deps, service.id);
    const fhir = fhirServer ? fhirClientForHook({ ...request, fhirServer }, { fetch: deps.fetch, logger: deps.log }) : undefined;
    const deadline = () => new AppError('upstream_timeout', 'gathering the evidence took longer than the hook deadline', { expose: true });
    const evidence = await gatherEvidence({ patientId, encounterId, prefetch: request.prefetch, fhir, signal }, { fetch: deps.fetch, pacs: deps.pacs, ...deps.imaging }).catch((e: unknown) => {
      throw signal.aborted ? deadline() : e;
    });
    if (signal.aborted) throw deadline();
    if (evidence.problems.some((p) => p.source === 'patient' && p.severity === 'error')) {
      throw new AppError('bad_request', 'the patient could not be read from prefetch or the FHIR server', { status: 412, expose: true });
    }
    const imageCount = evidence.images.right.length + evidence.images.left.length + evidence.images.unknown.length;
    // Whose analysis: the FHIR base this client is bound to, or — for a client bound to none, or a server it may
    // not name — the client alone, a subject no SMART launch ever matches (prefetch-only evidence is never
    // filed under a FHIR server the client was not bound to).
    const subject = fhirServer ? analysisSubject(fhirServer, patientId) : clientSubject(iss, patientId);
    const byReferences = referencesKey(subject, evidence.imageReferences, engine.info.manifestSha256, taskSet);
    const cardContext = { publicUrl: deps.publicUrl, patientId, eyeOrders: ordersInScope(request.context, request.hook).filter(isEyeOrder) };
    if (imageCount === 0) return answerWithoutImages(deps, evidence, byReferences, { service: service.id, random: engine.info.random, cards: cardContext });
    const key = analysisKey(subject, encounterId, evidence, engine.info.manifestSha256, taskSet);
    // The model run is not tied to this call's signal: it outlives a hook that stops waiting.
    const entry = deps.analyses.getOrStart(key, subject, async () => {
      const result = await analyseEvidence({ engine, findings: deps.findings, now: deps.now, maxTiles: deps.maxTiles, deferAssessPlan: Boolean(deps.assessPlan) }, evidence, { patientId, encounterId });
      deps.log.info(
        { service: service.id, urgency: result.findings.referral.urgency, questions: result.timings.questions, modelMs: Math.round(result.timings.modelMs), random: result.model.random },
        'exam analysed',
      );
      return result;
    }, { referencesKey: byReferences, onStored: deps.assessPlan && ((stored) => scheduleAssessPlan(deps.assessPlan!, deps.analyses, stored, evidence)) });
    const result = entry.result ?? (await waitFor(entry.promise, deps.waitMs, signal));
    if (!result) return { cards: deps.pendingOutcome === 'none' ? [] : [buildPendingCard(imageCount, engine.info.random, { ...cardContext, analysisId: entry.id })] };
    return { cards: [buildAnalysisCard(result, { ...cardContext, analysisId: entry.id })] };
  };
}

/**
 * No image could be used. When their pixels could not be fetched, the finished analysis of the same image
 * references is served with a note; otherwise, when images were found but refused, an info card says how
 * many and why (unless turned off); a record without images gets no card.
 */
function answerWithoutImages(deps: HookHandlerDeps, evidence: GatheredEvidence, byReferences: string | undefined, ctx: { service: string; random: boolean; cards: Omit<CardContext, 'analysisId'> }): CdsResponse {
  deps.log.info({ service: ctx.service, problems: evidence.problems.map((p) => p.kind) }, 'no usable retinal images: no new AI analysis');
  const notFetched = evidence.problems.flatMap((p) => p.reasons ?? []).find((r) => r === 'pacs_unreachable' || r === 'fetch_failed');
  const earlier = notFetched ? deps.analyses.findByReferences(byReferences) : undefined;
  if (earlier) {
    const note = `The images could not be re-read just now (${reasonInWords(notFetched!)}): this is the analysis of the same images made ${new Date(earlier.startedAt).toISOString().slice(0, 16).replace('T', ' ')} UTC.`;
    return { cards: [buildAnalysisCard(earlier.result, { ...ctx.cards, analysisId: earlier.id, note })] };
  }
  const card = deps.unassessedImagesCard === false ? undefined : buildUnassessedCard(evidence.problems, ctx.random, ctx.cards);
  return { cards: card ? [card] : [] };
}
