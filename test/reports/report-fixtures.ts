/** Builds findings + report bundles for the exam fixtures with deterministic ids. */
import { DEFAULT_FINDINGS_CONFIG, type FindingsConfig } from '../../src/findings/config.js';
import { planTasks } from '../../src/findings/plan.js';
import type { ExamContext, ModelAnswer, ModelIdentity } from '../../src/findings/types.js';
import type { ReportOutput } from '../../src/reports/bundle.js';
import { buildDraftReport } from '../../src/analysis/draft.js';
import type { TaskPlan } from '../../src/findings/plan.js';
import { MODEL } from '../findings/exam-fixtures.js';

export const GENERATED_AT = '2026-11-29T09:00:00Z';

export function buildFor(
  context: ExamContext,
  answers: (plan: TaskPlan) => Record<string, ModelAnswer>,
  opts: { model?: ModelIdentity; config?: FindingsConfig } = {},
): ReportOutput {
  const config = opts.config ?? DEFAULT_FINDINGS_CONFIG;
  const plan = planTasks(context, config);
  let n = 0;
  return buildDraftReport({
    context, plan, answers: answers(plan), model: opts.model ?? MODEL, config, generatedAt: GENERATED_AT,
    newId: () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
  });
}
