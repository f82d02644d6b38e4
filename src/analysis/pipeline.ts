/**
 * The use-case, top to bottom, shared by hook calls and the watcher:
 *
 *   1. list evidence     gather-evidence.ts `listEvidence`: clinical context + image references (no pixels)
 *   2. identify          analysis-cache.ts `analysisKey`: subject, references, case-text inputs, model, tasks
 *   3. find or start     analysis-cache.ts: a finished analysis is served as it is; otherwise, in the background:
 *   4. fetch pixels      gather-evidence.ts `fetchEvidence`: DICOMweb / attachments, checks, gradability
 *   5. plan, exam,       analyse.ts `analyseEvidence`: task plan (findings/plan.ts), VOLMO exam (model),
 *      aggregate, report  findings per eye, management plan, draft report bundle (reports/)
 *   6. second stage      assess-plan-stage.ts: VOLMO's own assessment and plan, when on
 *
 * Only step 1 is in a hook's path; steps 3–6 run at most once per identity, whoever asks first.
 */
import type { EvidenceBundle } from '../evidence/types.js';
import type { FhirClient } from '../fhir/client.js';
import type { FindingsConfig } from '../findings/config.js';
import type { Logger } from '../log.js';
import type { VlmEngine } from '../model/runtime/types.js';
import { analyseEvidence } from './analyse.js';
import { analysisKey, type AnalysisCache, type AnalysisEntry } from './analysis-cache.js';
import { scheduleAssessPlan, type AssessPlanStageDeps } from './assess-plan-stage.js';
import { fetchEvidence, type GatherEvidenceDeps, type ListedEvidence } from './gather-evidence.js';
import { NoUsableImages } from './no-usable-images.js';

/** How long the background fetch of one patient's pixels may take (PACS, attachments). */
const FETCH_TIMEOUT_MS = 120_000;

export interface PipelineDeps {
  log: Logger;
  engine: VlmEngine;
  findings: FindingsConfig;
  analyses: AnalysisCache;
  /** Pixel fetching and checks: the guarded fetch, PACS, pixel workers and caps. */
  images: GatherEvidenceDeps;
  maxTiles?: number;
  now?: () => Date;
  /** VOLMO's own assessment and plan as a second stage; absent = off. */
  assessPlan?: AssessPlanStageDeps;
}

export interface AnalysisRequest {
  /** Whose analysis (analysis-cache.ts `analysisSubject` / `clientSubject`). */
  subject: string;
  patientId: string;
  encounterId?: string;
  listed: ListedEvidence;
  /** Where attachment URLs are read (the hook's or the watcher's FHIR client). */
  fhir?: FhirClient;
}

/** The task set as part of an analysis's identity (a change of tasks or thresholds is another analysis). */
const taskSetKeys = new WeakMap<FindingsConfig, string>();
function taskSetKey(findings: FindingsConfig): string {
  let key = taskSetKeys.get(findings);
  if (key === undefined) taskSetKeys.set(findings, (key = JSON.stringify(findings)));
  return key;
}

/**
 * Steps 2–6: the finished (in memory or in the durable store), running or recently failed analysis of these
 * images, started when there is none.
 */
export async function analysisFor(deps: PipelineDeps, req: AnalysisRequest): Promise<AnalysisEntry> {
  const modelSha = deps.engine.info.manifestSha256;
  const key = analysisKey(req.subject, req.listed, modelSha, taskSetKey(deps.findings));
  let evidence: EvidenceBundle | undefined;
  // Not tied to any caller's signal: the run outlives the hook that started it.
  return deps.analyses.findOrStart(
    key,
    req.subject,
    { references: req.listed.references, modelSha },
    async () => {
      evidence = await fetchEvidence(req.listed, { fhir: req.fhir, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) }, deps.images);
      if (usableImages(evidence) === 0) throw new NoUsableImages(evidence.problems);
      const result = await analyseEvidence(
        { engine: deps.engine, findings: deps.findings, now: deps.now, maxTiles: deps.maxTiles, deferAssessPlan: Boolean(deps.assessPlan) },
        evidence,
        { patientId: req.patientId, encounterId: req.encounterId },
      );
      deps.log.info({ urgency: result.findings.referral.urgency, questions: result.timings.questions, modelMs: Math.round(result.timings.modelMs), random: result.model.random }, 'exam analysed');
      return result;
    },
    { onStored: deps.assessPlan && ((stored) => void (evidence && scheduleAssessPlan(deps.assessPlan!, deps.analyses, stored, evidence))) },
  );
}

function usableImages(evidence: EvidenceBundle): number {
  const { right, left, unknown } = evidence.images;
  return right.length + left.length + unknown.length;
}
