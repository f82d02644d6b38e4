/**
 * aggregateFindings: planned tasks + model answers -> per-eye findings, consistency flags and referral.
 * Pure. Per-image results are kept; per-eye values are conservative (any positive wins, the highest
 * grade wins) and every disagreement is flagged rather than resolved.
 */
import { ASSESS_PLAN_STEPS } from './assess-plan-prompts.js';
import { callFromProbability, normaliseCandidates, probabilityAtLeast } from './confidence.js';
import type { FindingsConfig } from './config.js';
import { checkConsistency } from './consistency.js';
import type {
  ConditionFinding, EyeFindings, ExamFindings, Flag, ScreeningImageResult, StageFinding, StageImageResult,
} from './findings-types.js';
import { parseBooleanAnswer, parseDigitAnswer, type ParsedBoolean, type ParsedDigit } from './parse.js';
import type { PlannedTask, TaskPlan } from './plan.js';
import { compareWithModel } from './management/compare.js';
import { deriveManagementPlan } from './management/derive.js';
import { alignWithPlan, deriveReferral } from './referral.js';
import { TASK_SET_VERSION, type ConditionId } from './tasks.js';
import type { ExamContext, ExamEye, ModelAnswer } from './types.js';

const NO_ANSWER = { kind: 'unparseable', reason: 'no-answer' } as const;
const NOT_A_CANDIDATE = { kind: 'unparseable', reason: 'not-a-candidate' } as const;

function parseBoolean(a: ModelAnswer | undefined): ParsedBoolean {
  if (!a) return NO_ANSWER;
  return a.greedyIsCandidate === false ? NOT_A_CANDIDATE : parseBooleanAnswer(a.text);
}

function parseDigit(a: ModelAnswer | undefined, allowed: readonly number[]): ParsedDigit {
  if (!a) return NO_ANSWER;
  return a.greedyIsCandidate === false ? NOT_A_CANDIDATE : parseDigitAnswer(a.text, allowed);
}

function screeningResult(t: PlannedTask, a: ModelAnswer | undefined, cfg: FindingsConfig, flags: Flag[]): ScreeningImageResult {
  const answer = parseBoolean(a);
  const dist = normaliseCandidates(a?.candidates, t.task.candidateTokens ?? []);
  const pTrue = dist?.TRUE;
  const base = { imageId: t.imageIds[0]!, eye: t.eye as ExamEye, condition: t.condition!, answer, pTrue };
  if (answer.kind === 'unparseable') return { ...base, status: 'unparseable' };
  const textCall = answer.value ? 'positive' : 'negative';
  if (pTrue === undefined) return { ...base, status: textCall };
  const probCall = callFromProbability(pTrue, cfg.conditionBands?.[t.condition!] ?? cfg.screeningBand);
  if (probCall !== 'indeterminate' && probCall !== textCall) {
    flags.push({ code: 'probability-contradicts-text', eye: base.eye, message: `${t.condition} on image ${base.imageId}: answer text and token probability disagree` });
    return { ...base, status: 'indeterminate' };
  }
  return { ...base, status: probCall };
}

function stageResult(t: PlannedTask, a: ModelAnswer | undefined): StageImageResult {
  const answer = parseDigit(a, t.task.allowedDigits ?? []);
  const dist = normaliseCandidates(a?.candidates, t.task.candidateTokens ?? []);
  return { imageId: t.imageIds[0]!, eye: t.eye as ExamEye, answer, distribution: dist };
}

function eyeCondition(condition: ConditionId, results: ScreeningImageResult[], eyeGradable: number, eyeFundus: number): ConditionFinding {
  const imageIds = results.map((r) => r.imageId);
  const finding = (status: ConditionFinding['status'], picked?: ScreeningImageResult): ConditionFinding => ({
    condition, status, imageIds, inconsistent: false,
    confidence: picked?.pTrue === undefined ? undefined : status === 'positive' ? picked.pTrue : status === 'negative' ? 1 - picked.pTrue : undefined,
  });
  if (results.length === 0) return finding(eyeFundus > 0 && eyeGradable === 0 ? 'ungradable' : 'not-assessed');
  const pos = results.filter((r) => r.status === 'positive');
  if (pos.length > 0) return finding('positive', maxBy(pos, (r) => r.pTrue ?? 0));
  if (results.some((r) => r.status === 'indeterminate')) return finding('indeterminate');
  if (results.some((r) => r.status === 'unparseable')) return finding('unparseable');
  return finding('negative', maxBy(results, (r) => r.pTrue ?? 0));
}

function maxBy<T>(xs: T[], f: (x: T) => number): T {
  return xs.reduce((best, x) => (f(x) > f(best) ? x : best), xs[0]!);
}

function eyeStage(results: StageImageResult[], eyeGradable: number, eyeImages: number, referableBand?: FindingsConfig['referableDrBand']): StageFinding {
  const imageIds = results.map((r) => r.imageId);
  if (results.length === 0) return { status: eyeImages > 0 && eyeGradable === 0 ? 'ungradable' : 'not-assessed', imageIds, inconsistent: false };
  const graded = results.filter((r) => r.answer.kind === 'digit');
  if (graded.length === 0) return { status: 'unparseable', imageIds, inconsistent: false };
  const top = maxBy(graded, (r) => (r.answer.kind === 'digit' ? r.answer.value : -1));
  const grade = top.answer.kind === 'digit' ? top.answer.value : 0;
  const out: StageFinding = { status: 'graded', grade, confidence: top.distribution?.[String(grade)], imageIds, inconsistent: false };
  if (!referableBand) return out;
  const textCall = grade >= 2 ? 'positive' : 'negative';
  const withDist = results.filter((r) => r.distribution);
  if (withDist.length === 0) return { ...out, referable: textCall === 'positive' || results.length === graded.length ? textCall : 'indeterminate' };
  const pReferable = Math.max(...withDist.map((r) => probabilityAtLeast(r.distribution!, 2)));
  let referable = callFromProbability(pReferable, referableBand);
  if (referable !== 'indeterminate' && referable !== textCall) referable = 'indeterminate';
  if (results.length !== graded.length && referable === 'negative') referable = 'indeterminate';
  return { ...out, pReferable, referable };
}

export function aggregateFindings(
  context: ExamContext, plan: TaskPlan, answers: Record<string, ModelAnswer>, config: FindingsConfig,
): ExamFindings {
  const flags: Flag[] = [];
  const screeningResults: ScreeningImageResult[] = [];
  const stageResults: StageImageResult[] = [];
  const mhResults: StageImageResult[] = [];
  const descriptions: ExamFindings['descriptions'] = [];
  const assessPlan: ExamFindings['assessPlan'] = [];
  for (const t of plan.tasks) {
    const a = answers[t.key];
    if (t.task.kind === 'screening') screeningResults.push(screeningResult(t, a, config, flags));
    else if (t.task.kind === 'dr-stage') stageResults.push(stageResult(t, a));
    else if (t.task.kind === 'mh-stage') mhResults.push(stageResult(t, a));
    else if (t.task.kind === 'describe') descriptions.push({ imageId: t.imageIds[0]!, eye: t.eye as ExamEye, text: a?.text.trim() ?? '' });
    else assessPlan.push({ step: t.step ?? 0, title: ASSESS_PLAN_STEPS.find((s) => s.step === t.step)?.title ?? '', text: a?.text.trim() ?? '' });
  }
  for (const r of [...screeningResults, ...stageResults, ...mhResults]) {
    if (r.answer.kind === 'unparseable') {
      const what = 'condition' in r ? `screening (${r.condition})` : 'staging';
      flags.push({ code: 'unparseable-answer', eye: r.eye, message: `${what} answer for image ${r.imageId} could not be parsed (${r.answer.reason})` });
    }
  }
  const eyesPresent = new Set<ExamEye>(['right', 'left', ...context.images.map((i) => i.eye)]);
  const eyes: EyeFindings[] = [...eyesPresent].map((eye) => {
    const imgs = context.images.filter((i) => i.eye === eye);
    const fundus = imgs.filter((i) => i.modality === 'OP');
    const oct = imgs.filter((i) => i.modality === 'OPT');
    for (const i of imgs.filter((x) => !x.gradability.gradable)) {
      flags.push({ code: 'ungradable-image', eye, message: `image ${i.id} is ungradable${i.gradability.reason ? `: ${i.gradability.reason}` : ''}` });
    }
    const gradableCount = (xs: typeof imgs) => xs.filter((i) => i.gradability.gradable).length;
    return {
      eye,
      images: imgs.map((i) => ({ id: i.id, modality: i.modality, gradable: i.gradability.gradable, reason: i.gradability.reason })),
      screening: config.conditions.map((c) =>
        eyeCondition(c, screeningResults.filter((r) => r.eye === eye && r.condition === c), gradableCount(fundus), fundus.length)),
      drStage: eyeStage(stageResults.filter((r) => r.eye === eye), gradableCount(fundus), fundus.length, config.referableDrBand),
      macularHole: eyeStage(mhResults.filter((r) => r.eye === eye), gradableCount(oct), oct.length),
    };
  });
  flags.push(...checkConsistency(eyes, screeningResults, stageResults));
  const steps = assessPlan.sort((x, y) => x.step - y.step);
  const managementPlan = deriveManagementPlan(eyes, context.facts, config.planRules);
  managementPlan.disagreements = compareWithModel(managementPlan, steps);
  return {
    taskSetVersion: TASK_SET_VERSION, eyes, descriptions, assessPlan: steps,
    flags, referral: alignWithPlan(deriveReferral(eyes, config), managementPlan), managementPlan, skipped: plan.skipped, screeningResults, stageResults,
  };
}
