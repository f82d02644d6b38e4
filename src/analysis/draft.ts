/**
 * Pipeline steps "aggregate" then "report" as one call: the answers of a task plan become findings
 * (findings/), then the FHIR transaction bundle and the note (reports/). Pure apart from the default uuid
 * source. It lives in analysis/ so that reports/ never calls into findings aggregation.
 */
import { aggregateFindings } from '../findings/aggregate.js';
import type { FindingsConfig } from '../findings/config.js';
import type { ExamFindings } from '../findings/findings-types.js';
import type { TaskPlan } from '../findings/plan.js';
import type { ExamContext, ModelAnswer, ModelIdentity } from '../findings/types.js';
import { buildReportBundle, type AssessPlanStage, type ReportOutput } from '../reports/bundle.js';

export interface DraftInput {
  context: ExamContext;
  plan: TaskPlan;
  /** Keyed by PlannedTask.key. */
  answers: Record<string, ModelAnswer>;
  model: ModelIdentity;
  config: FindingsConfig;
  generatedAt: string;
  newId?: () => string;
  assessPlanStage?: AssessPlanStage;
}

export function buildDraftReport(input: DraftInput): ReportOutput & { findings: ExamFindings } {
  const findings = aggregateFindings(input.context, input.plan, input.answers, input.config);
  const out = buildReportBundle({
    context: input.context, findings, model: input.model, config: input.config, generatedAt: input.generatedAt, newId: input.newId,
    assessPlanStage: input.assessPlanStage,
  });
  return { ...out, findings };
}
