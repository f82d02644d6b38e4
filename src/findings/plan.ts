/**
 * planTasks: which questions to ask given the evidence and config. Pure.
 * Ungradable images get no model questions at all (they yield an explicit `ungradable` result).
 */
import { AppError } from '../errors.js';
import { ASSESS_PLAN_STEPS, assessPlanPrompt } from './assess-plan-prompts.js';
import type { FindingsConfig } from './config.js';
import {
  ASSESS_PLAN_TASK, CONDITIONS, DESCRIBE_PROMPT, DESCRIBE_TASK, DR_STAGE_PROMPT, DR_STAGE_TASK, MH_STAGE_PROMPT,
  MH_STAGE_TASK, SCREENING_TASK, screeningPrompt, type ConditionId, type TaskDefinition, type TaskKind,
} from './tasks.js';
import type { ExamContext, ExamEye, ImageRecord, ModelAnswer } from './types.js';

export interface PlannedTask {
  /** Stable unique key; the runtime returns answers keyed by it. */
  key: string;
  task: TaskDefinition;
  condition?: ConditionId;
  /** Images sent with the question, in the order of the <image> tags in `prompt`. */
  imageIds: string[];
  eye: ExamEye | 'case';
  /** The full user turn, with <image> tags already placed (VOLMO runner rules). */
  prompt: string;
  /** Assess-and-plan only. */
  step?: 1 | 2 | 3 | 4 | 5;
  /** Keys of earlier tasks whose question+answer form this task's conversation history (chained mode). */
  historyKeys: string[];
}

export interface SkippedTask {
  kind: TaskKind;
  imageId?: string;
  reason: 'disabled' | 'no-fundus-image' | 'no-oct-image' | 'ungradable' | 'no-gradable-image';
}

export interface TaskPlan {
  tasks: PlannedTask[];
  skipped: SkippedTask[];
}

export interface ConversationTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** VOLMO runner rule: one image -> "<image>\n", several -> "Image-1: <image>\nImage-2: <image>\n...". */
export function imagePrefix(n: number): string {
  if (n <= 0) return '';
  if (n === 1) return '<image>\n';
  return Array.from({ length: n }, (_, i) => `Image-${i + 1}: <image>\n`).join('');
}

function perImage(
  images: ImageRecord[], task: TaskDefinition, prompt: string, keyPart: string, condition?: ConditionId,
): PlannedTask[] {
  return images.map((img) => ({
    key: `${task.id}:${keyPart}${img.id}`, task, condition, imageIds: [img.id], eye: img.eye, prompt, historyKeys: [],
  }));
}

/** Maximum number of images attached to the case-level assessment (VOLMO cases had up to 7). */
export const ASSESS_PLAN_MAX_IMAGES = 4;

export function planTasks(context: ExamContext, config: FindingsConfig): TaskPlan {
  const tasks: PlannedTask[] = [];
  const skipped: SkippedTask[] = [];
  const fundus = context.images.filter((i) => i.modality === 'OP');
  const oct = context.images.filter((i) => i.modality === 'OPT');
  const gradable = (list: ImageRecord[]) => list.filter((i) => i.gradability.gradable);
  for (const img of context.images) {
    if (!img.gradability.gradable) skipped.push({ kind: img.modality === 'OP' ? 'screening' : 'mh-stage', imageId: img.id, reason: 'ungradable' });
  }

  const fundusTask = (kind: TaskKind, enabled: boolean, build: (g: ImageRecord[]) => PlannedTask[]) => {
    if (!enabled) skipped.push({ kind, reason: 'disabled' });
    else if (fundus.length === 0) skipped.push({ kind, reason: 'no-fundus-image' });
    else if (gradable(fundus).length === 0) skipped.push({ kind, reason: 'no-gradable-image' });
    else tasks.push(...build(gradable(fundus)));
  };
  fundusTask('screening', config.tasks.screening, (g) =>
    CONDITIONS.filter((c) => config.conditions.includes(c.id)).flatMap((c) =>
      perImage(g, SCREENING_TASK, screeningPrompt(c), `${c.id}:`, c.id)));
  fundusTask('dr-stage', config.tasks.drStaging, (g) => perImage(g, DR_STAGE_TASK, DR_STAGE_PROMPT, ''));

  if (!config.tasks.macularHoleStaging) skipped.push({ kind: 'mh-stage', reason: 'disabled' });
  else if (oct.length === 0) skipped.push({ kind: 'mh-stage', reason: 'no-oct-image' });
  else if (gradable(oct).length === 0) skipped.push({ kind: 'mh-stage', reason: 'no-gradable-image' });
  else tasks.push(...perImage(gradable(oct), MH_STAGE_TASK, MH_STAGE_PROMPT, ''));

  const usable = gradable(context.images);
  if (!config.tasks.description) skipped.push({ kind: 'describe', reason: 'disabled' });
  else if (usable.length === 0) skipped.push({ kind: 'describe', reason: 'no-gradable-image' });
  else tasks.push(...perImage(usable, DESCRIBE_TASK, DESCRIBE_PROMPT, ''));

  if (!config.tasks.assessPlan) skipped.push({ kind: 'assess-plan', reason: 'disabled' });
  else tasks.push(...planAssessPlan(context, usable.slice(0, ASSESS_PLAN_MAX_IMAGES), config.assessPlanHistory));
  return { tasks, skipped };
}

function planAssessPlan(context: ExamContext, images: ImageRecord[], history: FindingsConfig['assessPlanHistory']): PlannedTask[] {
  const ids = images.map((i) => i.id);
  const prefix = imagePrefix(ids.length);
  const out: PlannedTask[] = [];
  for (const s of ASSESS_PLAN_STEPS) {
    const text = assessPlanPrompt(s.step, context.caseText ?? context.profile ?? {});
    const chainedLater = history === 'chained' && s.step > 1;
    out.push({
      key: `assess-plan:${s.step}`,
      task: ASSESS_PLAN_TASK,
      imageIds: ids,
      eye: 'case',
      // In chained mode the images travel once, in the first user turn of the history.
      prompt: chainedLater ? text : prefix + text,
      step: s.step,
      historyKeys: chainedLater ? out.map((t) => t.key) : [],
    });
  }
  return out;
}

/**
 * The conversation to send for a planned task: earlier turns (chained mode) and then this prompt.
 * Throws if a history answer is missing, since the runtime must run steps in order.
 */
export function buildConversation(planned: PlannedTask, plan: TaskPlan, answers: Record<string, ModelAnswer>): ConversationTurn[] {
  const turns: ConversationTurn[] = [];
  for (const key of planned.historyKeys) {
    const prior = plan.tasks.find((t) => t.key === key);
    const answer = answers[key];
    if (!prior || !answer) throw new AppError('bad_request', `history for ${planned.key} needs the answer to ${key} first`);
    turns.push({ role: 'user', content: prior.prompt }, { role: 'assistant', content: answer.text });
  }
  turns.push({ role: 'user', content: planned.prompt });
  return turns;
}
