/**
 * The exam use-case: EvidenceBundle -> task plan -> VOLMO questions (one engine exam per image set, so
 * the image prefix is computed once for all of its questions) -> findings -> draft report. No I/O beyond
 * the engine.
 */
import type { EvidenceBundle } from '../evidence/types.js';
import type { FindingsConfig } from '../findings/config.js';
import type { ExamFindings } from '../findings/findings-types.js';
import { buildConversation, planTasks, type PlannedTask, type TaskPlan } from '../findings/plan.js';
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
  /** The evidence it was computed from, without image bytes. */
  evidence: EvidenceBundle;
  timings: { modelMs: number; questions: number };
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
  const runnable = plan.tasks.filter((t) => t.imageIds.every((id) => pixels.has(id)));
  const imagesOf = (t: PlannedTask) => t.imageIds.map((id) => pixels.get(id)!);
  // Independent questions: one exam per image set. Chained steps (conversation history) run after, in order.
  const groups = groupByImages(runnable.filter((t) => t.historyKeys.length === 0));
  const answers: Answer[] = [];
  for (const group of groups) {
    answers.push(...(await deps.engine.exam({ images: imagesOf(group[0]!), maxTiles: deps.maxTiles, questions: group.map((t) => toRuntimeQuestion(t)) }, opts)));
  }
  for (const t of runnable.filter((c) => c.historyKeys.length > 0)) {
    const sofar = answersById(answers);
    if (!t.historyKeys.every((k) => k in sofar)) continue; // an earlier step could not run: this one is reported missing
    const history = buildConversation(t, plan, sofar).slice(0, -1);
    answers.push(...(await deps.engine.exam({ images: imagesOf(t), maxTiles: deps.maxTiles, questions: [toRuntimeQuestion(t, history)] }, opts)));
  }
  const model = modelIdentity(deps.engine.info);
  const report = buildDraftReport({ context, plan, answers: answersById(answers), model, config: deps.findings, generatedAt: now.toISOString() });
  return {
    model,
    plan,
    findings: report.findings,
    report,
    // Kept for the card and the clinician's review; pixels are dropped so a cached analysis holds no image bytes.
    evidence: withoutPixels(evidence),
    timings: { modelMs: performance.now() - t0, questions: answers.length },
  };
}

function withoutPixels(evidence: EvidenceBundle): EvidenceBundle {
  const strip = (list: EvidenceBundle['images']['right']) => list.map(({ bytes: _bytes, ...rest }) => rest);
  return { ...evidence, images: { right: strip(evidence.images.right), left: strip(evidence.images.left), unknown: strip(evidence.images.unknown) } };
}
