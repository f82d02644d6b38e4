/**
 * One stored image result -> the service's own decisions, pure: the checked image is turned into the same
 * ExamContext the service builds (toExamInputs), the same task plan (planTasks), and the stored model
 * answers go through the service's findings code (aggregateFindings) under a given FindingsConfig. So a
 * change of bands (a site's operating points) is scored again without running the model.
 */
import { toExamInputs } from '../analysis/exam-context.js';
import type { EvidenceBundle, EvidenceImage } from '../evidence/types.js';
import { probabilityAtLeast } from '../findings/confidence.js';
import { resolveFindingsConfig, type FindingsConfig, type FindingsConfigOverrides } from '../findings/config.js';
import type { StageFinding } from '../findings/findings-types.js';
import { aggregateFindings } from '../findings/aggregate.js';
import { planTasks } from '../findings/plan.js';
import type { ImageResult, Labels, ScoredImage, ServiceCall } from './types.js';

/** The findings configuration of an evaluation: the three answer-token tasks, never the free-text ones. */
export function evalFindingsConfig(overrides: FindingsConfigOverrides = {}): FindingsConfig {
  return resolveFindingsConfig({
    ...overrides,
    tasks: { screening: true, drStaging: true, macularHoleStaging: true, description: false, assessPlan: false },
  });
}

/** A one-image EvidenceBundle with no clinical context: one dataset image is one exam. */
export function singleImageEvidence(image: EvidenceImage): EvidenceBundle {
  const side = image.eye === 'right' || image.eye === 'left' ? image.eye : 'unknown';
  return {
    version: 1,
    patient: { conditions: [], visualAcuity: {}, iop: {}, medications: [], notes: [] },
    caseText: '',
    images: { right: [], left: [], unknown: [], [side]: [image] },
    problems: [],
    sources: { prefetchUsed: [], fetched: [] },
  };
}

/** Fixed ids and date: the exam context of a dataset image names no patient. */
export const EVAL_IDS = { patientId: 'eval' } as const;
const EPOCH = new Date(0);

function stageValue(s: StageFinding): number | null | undefined {
  if (s.status === 'graded') return s.grade;
  return s.status === 'unparseable' ? null : undefined;
}

export function scoreImage(result: ImageResult, labels: Labels, cfg: FindingsConfig): ScoredImage {
  const scored: ScoredImage = { key: result.key, outcome: result.outcome, labels, screening: {} };
  if (result.outcome !== 'assessed' || !result.image) return scored;
  const { context } = toExamInputs(singleImageEvidence(result.image), EVAL_IDS, EPOCH);
  const plan = planTasks(context, cfg);
  const findings = aggregateFindings(context, plan, result.answers ?? {}, cfg);
  for (const r of findings.screeningResults) scored.screening[r.condition] = { call: r.status, ...(r.pTrue !== undefined ? { p: r.pTrue } : {}) };
  const dist = findings.stageResults[0]?.distribution;
  if (dist) scored.pReferableDr = probabilityAtLeast(dist, 2);
  const eye = findings.eyes.find((e) => e.drStage.status !== 'not-assessed' || e.macularHole.status !== 'not-assessed');
  if (eye) {
    const dr = stageValue(eye.drStage);
    if (dr !== undefined) scored.drGrade = dr;
    const call: ServiceCall | undefined = eye.drStage.referable ?? (eye.drStage.status === 'unparseable' ? 'unparseable' : undefined);
    if (call) scored.referableDrCall = call;
    const mh = stageValue(eye.macularHole);
    if (mh !== undefined) scored.macularHoleStage = mh;
  }
  return scored;
}
