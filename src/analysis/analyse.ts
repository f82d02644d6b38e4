/**
 * The exam use-case: EvidenceBundle -> task plan -> VOLMO questions (one engine exam per image set, so
 * the image prefix is computed once for all of its questions) -> findings -> draft report. No I/O beyond
 * the engine.
 */
import type { EvidenceBundle } from '../evidence/types.js';
import type { FindingsConfig } from '../findings/config.js';
import type { ExamFindings } from '../findings/findings-types.js';
import { planTasks, type PlannedTask, type TaskPlan } from '../findings/plan.js';
import { answersById, modelIdentity, toRuntimeQuestion } from '../findings/runtime-adapter.js';
import type { ModelIdentity } from '../findings/types.js';
import type { Answer, VlmEngine } from '../model/runtime/types.js';
import { buildDraftReport } from '../reports/draft.js';
import type { ReportOutput } from '../reports/bundle.js';
import { toExamInputs } from './exam-context.js';

export interface AnalysisResult {
  model: ModelIdentity;
  plan: TaskPlan;
  findings: ExamFindings;
  report: ReportOutput;
  evidence: EvidenceBundle;
  timings: { modelMs: number; questions: number; exams: number };
}

export interface AnalyseDeps {
  engine: VlmEngine;
  findings: FindingsConfig;
  now?: () => Date;
  maxTiles?: number;
}

/** Groups planned tasks by the exact image list they show, so each image set is prefilled once. */
function groupByImages(tasks: readonly PlannedTask[]): PlannedTask[][] {
  const groups = new Map<string, PlannedTask[]>();
  for (const t of tasks) {
    const key = t.imageIds.join('|');
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  return [...groups.values()];
}

export async function analyseEvidence(
  deps: AnalyseDeps,
  evidence: EvidenceBundle,
  ids: { patientId: string; encounterId?: string },
  opts: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<AnalysisResult> {
  const now = deps.now?.() ?? new Date();
  const { context, pixels } = toExamInputs(evidence, ids, now);
  const plan = planTasks(context, deps.findings);
  const t0 = performance.now();
  const groups = groupByImages(plan.tasks.filter((t) => t.imageIds.every((id) => pixels.has(id))));
  const answers: Answer[] = [];
  for (const group of groups) {
    const images = group[0]!.imageIds.map((id) => pixels.get(id)!);
    answers.push(...(await deps.engine.exam({ images, maxTiles: deps.maxTiles, questions: group.map(toRuntimeQuestion) }, opts)));
  }
  const model = modelIdentity(deps.engine.info);
  const report = buildDraftReport({ context, plan, answers: answersById(answers), model, config: deps.findings, generatedAt: now.toISOString() });
  return {
    model,
    plan,
    findings: report.findings,
    report,
    evidence,
    timings: { modelMs: performance.now() - t0, questions: answers.length, exams: groups.length },
  };
}
