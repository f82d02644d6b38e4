/**
 * The exam use-case: EvidenceBundle -> task plan -> VOLMO questions (one engine exam per image set, so
 * the image prefix is computed once for all of its questions) -> findings -> draft report. No I/O beyond
 * the engine. With `deferAssessPlan`, VOLMO's five assessment-and-plan steps are left for the second stage
 * (assess-plan-stage.ts): the screening result is ready without waiting for hundreds of decoded tokens.
 */
import type { EvidenceBundle } from '../evidence/types.js';
import type { FindingsConfig } from '../findings/config.js';
import type { ExamFindings } from '../findings/findings-types.js';
import { buildConversation, planTasks, type PlannedTask, type TaskPlan } from '../findings/plan.js';
import { answersById, modelIdentity, toRuntimeQuestion } from '../findings/runtime-adapter.js';
import type { ExamContext, ModelAnswer, ModelIdentity } from '../findings/types.js';
import type { Answer, RunOptions, VlmEngine } from '../model/runtime/types.js';
import { buildDraftReport } from './draft.js';
import type { AssessPlanStage, ReportOutput } from '../reports/bundle.js';
import { toExamInputs } from './exam-context.js';
import type { OrderRef } from './orders.js';

export interface AnalysisResult {
  model: ModelIdentity;
  plan: TaskPlan;
  findings: ExamFindings;
  report: ReportOutput;
  /** The evidence it was computed from, without image bytes. */
  evidence: EvidenceBundle;
  /** What the model saw and answered (no pixels), so a later stage can rebuild the draft. */
  context: ExamContext;
  answers: Record<string, ModelAnswer>;
  /** VOLMO's own assessment and plan as a second stage; absent when not requested. */
  assessPlanStage?: AssessPlanStage;
  timings: { modelMs: number; questions: number; assessPlanMs?: number; assessPlanTokens?: number };
  /** The orders the analysis was asked for (the hooks' eye orders); absent for analyses started by the watcher or made before orders were kept. */
  orders?: OrderRef[];
}

export interface AnalyseDeps {
  engine: VlmEngine;
  findings: FindingsConfig;
  now?: () => Date;
  maxTiles?: number;
  /** Leave the assess-plan steps for the second stage (the result says `pending`). */
  deferAssessPlan?: boolean;
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

/**
 * Runs `tasks` on the engine: independent questions as one exam per image set (shared prefix), then chained
 * steps in order with their history (from `earlier` answers and those of this run).
 */
export async function runPlannedTasks(
  deps: Pick<AnalyseDeps, 'engine' | 'maxTiles'>, plan: TaskPlan, tasks: readonly PlannedTask[], pixels: ReadonlyMap<string, Uint8Array>,
  earlier: Record<string, ModelAnswer>, opts: RunOptions = {},
): Promise<Answer[]> {
  const runnable = tasks.filter((t) => t.imageIds.every((id) => pixels.has(id)));
  const imagesOf = (t: PlannedTask) => t.imageIds.map((id) => pixels.get(id)!);
  const answers: Answer[] = [];
  for (const group of groupByImages(runnable.filter((t) => t.historyKeys.length === 0))) {
    answers.push(...(await deps.engine.exam({ images: imagesOf(group[0]!), maxTiles: deps.maxTiles, questions: group.map((t) => toRuntimeQuestion(t)) }, opts)));
  }
  for (const t of runnable.filter((c) => c.historyKeys.length > 0)) {
    const sofar = { ...earlier, ...answersById(answers) };
    if (!t.historyKeys.every((k) => k in sofar)) continue; // an earlier step could not run: this one is reported missing
    const history = buildConversation(t, plan, sofar).slice(0, -1);
    answers.push(...(await deps.engine.exam({ images: imagesOf(t), maxTiles: deps.maxTiles, questions: [toRuntimeQuestion(t, history)] }, opts)));
  }
  return answers;
}

export const isAssessPlan = (t: PlannedTask) => t.task.kind === 'assess-plan';

/** The plan without the tasks a later stage runs (the draft then neither shows nor misses them). */
export function withoutTasks(plan: TaskPlan, drop: (t: PlannedTask) => boolean): TaskPlan {
  return { ...plan, tasks: plan.tasks.filter((t) => !drop(t)) };
}

export async function analyseEvidence(
  deps: AnalyseDeps,
  evidence: EvidenceBundle,
  ids: { patientId: string; encounterId?: string },
  opts: RunOptions = {},
): Promise<AnalysisResult> {
  const now = deps.now?.() ?? new Date();
  const { context, pixels } = toExamInputs(evidence, ids, now);
  const plan = planTasks(context, deps.findings);
  const deferred = deps.deferAssessPlan === true && plan.tasks.some(isAssessPlan);
  const t0 = performance.now();
  const firstPlan = deferred ? withoutTasks(plan, isAssessPlan) : plan;
  const answers = answersById(await runPlannedTasks(deps, plan, firstPlan.tasks, pixels, {}, opts));
  const model = modelIdentity(deps.engine.info);
  const assessPlanStage: AssessPlanStage | undefined = deferred ? { status: 'pending' } : undefined;
  const report = buildDraftReport({ context, plan: firstPlan, answers, model, config: deps.findings, generatedAt: now.toISOString(), assessPlanStage });
  return {
    model,
    plan,
    findings: report.findings,
    report,
    // Kept for the card and the clinician's review; pixels are dropped so a cached analysis holds no image bytes.
    evidence: withoutPixels(evidence),
    context,
    answers,
    ...(assessPlanStage ? { assessPlanStage } : {}),
    timings: { modelMs: performance.now() - t0, questions: Object.keys(answers).length },
  };
}

function withoutPixels(evidence: EvidenceBundle): EvidenceBundle {
  const strip = (list: EvidenceBundle['images']['right']) => list.map(({ bytes: _bytes, ...rest }) => rest);
  return { ...evidence, images: { right: strip(evidence.images.right), left: strip(evidence.images.left), unknown: strip(evidence.images.unknown) } };
}
