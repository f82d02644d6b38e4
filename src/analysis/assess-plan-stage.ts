/**
 * VOLMO's own assessment and plan as the second stage of an analysis: after the screening result is stored,
 * the five assess-plan steps run (independent steps share one image prefix in one exam; chained steps run in
 * order with their history), and the SAME analysis entry is updated with a rebuilt draft: the model's
 * differential, assessment, treatments and follow-up (model-generated, unverified) beside the rule-derived
 * plan, and their disagreements flagged.
 */
import type { EvidenceBundle } from '../evidence/types.js';
import type { FindingsConfig } from '../findings/config.js';
import { answersById } from '../findings/runtime-adapter.js';
import type { Logger } from '../log.js';
import type { VlmEngine } from '../model/runtime/types.js';
import { buildDraftReport } from './draft.js';
import { isAssessPlan, runPlannedTasks, type AnalysisResult } from './analyse.js';
import type { AnalysisCache, AnalysisEntry } from './analysis-cache.js';
import { toExamInputs } from './exam-context.js';
import type { SecondStage } from './second-stage.js';

export interface AssessPlanStageDeps {
  stage: SecondStage;
  engine: VlmEngine;
  findings: FindingsConfig;
  log: Logger;
  maxTiles?: number;
  now?: () => Date;
  timeoutMs?: number;
}

/** Runs the deferred assess-plan steps of `first` and returns the updated result (status done or failed). */
export async function runAssessPlanStage(deps: AssessPlanStageDeps, first: AnalysisResult, evidence: EvidenceBundle): Promise<AnalysisResult> {
  const t0 = performance.now();
  const { pixels } = toExamInputs(evidence, { patientId: first.context.patient.replace(/^Patient\//, '') }, new Date(first.context.effectiveDateTime));
  const now = deps.now?.() ?? new Date();
  try {
    const answers = await runPlannedTasks(deps, first.plan, first.plan.tasks.filter(isAssessPlan), pixels, first.answers, { timeoutMs: deps.timeoutMs });
    const all = { ...first.answers, ...answersById(answers) };
    const assessPlanStage = { status: 'done' as const, completedAt: now.toISOString() };
    const report = buildDraftReport({ context: first.context, plan: first.plan, answers: all, model: first.model, config: deps.findings, generatedAt: now.toISOString(), assessPlanStage });
    const tokens = answers.reduce((n, a) => n + a.tokenIds.length, 0);
    return {
      ...first, findings: report.findings, report, answers: all, assessPlanStage,
      timings: { ...first.timings, assessPlanMs: performance.now() - t0, assessPlanTokens: tokens },
    };
  } catch (e) {
    deps.log.warn({ err: e }, 'assessment-and-plan stage failed; the draft keeps the screening result and the rule-derived plan');
    const assessPlanStage = { status: 'failed' as const, message: 'the model could not complete the assessment-and-plan steps' };
    const firstPlan = { ...first.plan, tasks: first.plan.tasks.filter((t) => !isAssessPlan(t)) };
    const report = buildDraftReport({ context: first.context, plan: firstPlan, answers: first.answers, model: first.model, config: deps.findings, generatedAt: first.report.diagnosticReport.issued ?? now.toISOString(), assessPlanStage });
    return { ...first, report, findings: report.findings, assessPlanStage };
  }
}

/**
 * After `entry` has stored its first result: queue the second stage for it, which updates the same entry.
 * `evidence` must still carry the image bytes (the cached result does not).
 */
export function scheduleAssessPlan(deps: AssessPlanStageDeps, cache: Pick<AnalysisCache, 'update'>, entry: AnalysisEntry, evidence: EvidenceBundle): boolean {
  const first = entry.result;
  if (first?.assessPlanStage?.status !== 'pending') return false;
  return deps.stage.enqueue(entry.id, async () => {
    const updated = await runAssessPlanStage(deps, first, evidence);
    const stored = cache.update(entry.id, updated);
    deps.log.info(
      { status: updated.assessPlanStage?.status, stored, ms: Math.round(updated.timings.assessPlanMs ?? 0), tokens: updated.timings.assessPlanTokens, disagreements: updated.findings.managementPlan.disagreements.length },
      'assessment-and-plan stage finished',
    );
  });
}
