/**
 * The hook use-case: verify the FHIR server is allowed, gather the evidence (prefetch first), run the
 * VOLMO exam, and answer with a card. Without a loaded model it answers honestly with no cards — it never
 * invents findings. Model runs continue in the background when they take longer than the hook may wait
 * (see analysis-cache.ts); their drafts are kept for the clinician's review.
 */
import { analyseEvidence } from '../analysis/analyse.js';
import { AnalysisCache, analysisKey, analysisSubject, waitFor } from '../analysis/analysis-cache.js';
import { scheduleAssessPlan, type AssessPlanStageDeps } from '../analysis/assess-plan-stage.js';
import { gatherEvidence, type GatherEvidenceDeps } from '../analysis/gather-evidence.js';
import { AppError } from '../errors.js';
import { fhirClientForHook } from '../fhir/hook-client.js';
import type { FindingsConfig } from '../findings/config.js';
import type { Logger } from '../log.js';
import type { VlmEngine } from '../model/runtime/types.js';
import type { GuardedFetch } from '../net/guarded-fetch.js';
import { buildAnalysisCard, buildPendingCard } from './cards.js';
import type { CdsRequest } from './request-schema.js';
import type { HookHandler } from './types.js';

export interface HookHandlerDeps {
  log: Logger;
  /** The outbound fetch (allowlist + address checks): FHIR servers, PACS. */
  fetch: GuardedFetch;
  /** Whether the EHR identified by the JWT `iss` may name this FHIR server (FHIR servers only, never a PACS or token URL). */
  isFhirServerAllowed: (url: string, iss: string | undefined) => boolean;
  pacs?: GatherEvidenceDeps['pacs'];
  /** The loaded model, or null when none is configured or it failed to load. */
  engine: () => VlmEngine | null;
  findings: FindingsConfig;
  /** Finished and running analyses (see analysis-cache.ts). */
  analyses: AnalysisCache;
  /** How long a hook call waits for a running analysis before answering with a "pending" card. */
  waitMs: number;
  maxTiles?: number;
  now?: () => Date;
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
    const engine = deps.engine();
    if (!engine) return { cards: [] };
    const { patientId, encounterId } = request.context;
    const fhirServer = allowedFhirServer(request, iss, deps, service.id);
    const fhir = fhirServer ? fhirClientForHook({ ...request, fhirServer }, { fetch: deps.fetch, logger: deps.log }) : undefined;
    const deadline = () => new AppError('upstream_timeout', 'gathering the evidence took longer than the hook deadline', { expose: true });
    const evidence = await gatherEvidence({ patientId, encounterId, prefetch: request.prefetch, fhir, signal }, { fetch: deps.fetch, pacs: deps.pacs }).catch((e: unknown) => {
      throw signal.aborted ? deadline() : e;
    });
    if (signal.aborted) throw deadline();
    if (evidence.problems.some((p) => p.source === 'patient' && p.severity === 'error')) {
      throw new AppError('bad_request', 'the patient could not be read from prefetch or the FHIR server', { status: 412, expose: true });
    }
    const imageCount = evidence.images.right.length + evidence.images.left.length + evidence.images.unknown.length;
    if (imageCount === 0) {
      deps.log.info({ service: service.id, problems: evidence.problems.map((p) => p.kind) }, 'no retinal images: no AI analysis');
      return { cards: [] };
    }
    // Whose analysis: the EHR's FHIR base (for EHRs such as Epic the JWT iss is that base) and the patient id.
    const subject = analysisSubject(fhirServer ?? iss, patientId);
    const key = analysisKey(subject, encounterId, evidence, engine.info.manifestSha256, taskSet);
    // The model run is not tied to this call's signal: it outlives a hook that stops waiting.
    const entry = deps.analyses.getOrStart(key, subject, async () => {
      const result = await analyseEvidence({ engine, findings: deps.findings, now: deps.now, maxTiles: deps.maxTiles, deferAssessPlan: Boolean(deps.assessPlan) }, evidence, { patientId, encounterId });
      deps.log.info(
        { service: service.id, urgency: result.findings.referral.urgency, questions: result.timings.questions, modelMs: Math.round(result.timings.modelMs), random: result.model.random },
        'exam analysed',
      );
      return result;
    }, deps.assessPlan && ((stored) => scheduleAssessPlan(deps.assessPlan!, deps.analyses, stored, evidence)));
    const result = entry.result ?? (await waitFor(entry.promise, deps.waitMs, signal));
    if (!result) return { cards: [buildPendingCard(imageCount, engine.info.random, { uuid: entry.id })] };
    return { cards: [buildAnalysisCard(result, { uuid: entry.id })] };
  };
}
