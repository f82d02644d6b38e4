/**
 * Scored images -> the evaluation's numbers, pure. Definitions (docs/clinical-logic.md, "Site validation"):
 * - a screening call counts as test-positive when the service flags it (positive or indeterminate: both
 *   raise a referral), test-negative when negative; unparseable answers and images without an answer
 *   (ungradable, rejected, not asked) are counted, not scored;
 * - referable DR (reference) = ICDR >= 2 or macular edema; (service) = the referable-DR call or the
 *   macular-edema call flagged; not referable only when both are negative;
 * - DR stage: parsed grade vs ICDR grade (accuracy, quadratic weighted kappa);
 * - calibration: P(TRUE) of every labelled screening answer pooled, and P(ICDR >= 2) vs ICDR >= 2.
 */
import { CONDITIONS, type ConditionId } from '../findings/tasks.js';
import {
  accuracy, binaryRates, bootstrapInterval, confusionMatrix, countBinary, expectedCalibrationError, quadraticWeightedKappa,
  reliabilityBins, thresholdForSensitivity, type BinaryCounts, type BinaryPair, type Interval, type OperatingPoint,
  type ReliabilityBin, type ScoredCase,
} from './metrics.js';
import type { Labels, Outcome, ScoredImage, ServiceCall } from './types.js';

export interface SummaryOptions {
  resamples: number;
  seed: number;
  targetSensitivity: number;
  bins: number;
}

export interface Estimate {
  value: number | null;
  ci: Interval | null;
}

/** Labelled cases the service gave no usable answer for, by why. */
export interface Unscored {
  ungradable: number;
  rejected: number;
  notAssessed: number;
  notAsked: number;
  unparseable: number;
}

export interface BinarySummary {
  labelled: number;
  scored: number;
  unscored: Unscored;
  counts: BinaryCounts;
  sensitivity: Estimate;
  specificity: Estimate;
  ppv: Estimate;
  f1: Estimate;
}

export interface Calibration {
  n: number;
  ece: number | null;
  bins: ReliabilityBin[];
}

export interface ConditionSummary extends BinarySummary {
  condition: ConditionId;
  label: string;
  calibration: Calibration;
  operatingPoint: OperatingPoint | null;
}

export interface Summary {
  images: { total: number; byOutcome: Record<Outcome, number>; reasons: Record<string, number>; ungradableRate: number | null };
  screening: ConditionSummary[];
  meanF1: { value: number | null; conditions: number };
  drStage: { labelled: number; scored: number; unscored: Unscored; confusion: number[][]; accuracy: Estimate; kappa: Estimate };
  referableDr: BinarySummary & { calibration: Calibration; operatingPoint: OperatingPoint | null };
  macularHole: { labelled: number; scored: number; unscored: Unscored; accuracy: number | null };
  calibration: { screening: Calibration; referableDr: Calibration };
}

const flagged = (c: ServiceCall) => c === 'positive' || c === 'indeterminate';

/** Why a labelled image has no scoreable answer ('unparseable' or 'notAsked' when assessed). */
function unscoredKey(s: ScoredImage, answered: boolean, parseable: boolean): keyof Unscored | undefined {
  if (s.outcome === 'ungradable') return 'ungradable';
  if (s.outcome === 'rejected') return 'rejected';
  if (s.outcome === 'not-assessed') return 'notAssessed';
  if (!answered) return 'notAsked';
  return parseable ? undefined : 'unparseable';
}

function emptyUnscored(): Unscored {
  return { ungradable: 0, rejected: 0, notAssessed: 0, notAsked: 0, unparseable: 0 };
}

/** Splits labelled images into scored cases and counted reasons. `read` gives undefined (not asked), null (unparseable) or the case. */
function collect<T>(images: readonly ScoredImage[], read: (s: ScoredImage) => T | null | undefined): { cases: T[]; unscored: Unscored } {
  const cases: T[] = [];
  const unscored = emptyUnscored();
  for (const s of images) {
    const v = s.outcome === 'assessed' ? read(s) : undefined;
    const why = unscoredKey(s, v !== undefined, v !== null);
    if (why) unscored[why] += 1;
    else cases.push(v as T);
  }
  return { cases, unscored };
}

function estimate<T>(cases: readonly T[], stat: (xs: readonly T[]) => number | null, o: SummaryOptions): Estimate {
  return { value: stat(cases), ci: o.resamples > 0 ? bootstrapInterval(cases, stat, { resamples: o.resamples, seed: o.seed }) : null };
}

function binarySummary(labelled: number, pairs: BinaryPair[], unscored: Unscored, o: SummaryOptions): BinarySummary {
  const rate = (k: keyof ReturnType<typeof binaryRates>) => (xs: readonly BinaryPair[]) => binaryRates(countBinary(xs))[k];
  return {
    labelled, scored: pairs.length, unscored, counts: countBinary(pairs),
    sensitivity: estimate(pairs, rate('sensitivity'), o),
    specificity: estimate(pairs, rate('specificity'), o),
    ppv: estimate(pairs, rate('ppv'), o),
    f1: estimate(pairs, rate('f1'), o),
  };
}

function calibration(cases: ScoredCase[], bins: number): Calibration {
  const b = reliabilityBins(cases, bins);
  return { n: cases.length, ece: expectedCalibrationError(b), bins: b };
}

function conditionSummary(images: readonly ScoredImage[], c: ConditionId, o: SummaryOptions): ConditionSummary {
  const labelled = images.filter((s) => s.labels.conditions[c] !== undefined);
  const truth = (s: ScoredImage) => s.labels.conditions[c]!;
  const { cases, unscored } = collect(labelled, (s) => {
    const a = s.screening[c];
    if (!a) return undefined;
    return a.call === 'unparseable' ? null : { truth: truth(s), predicted: flagged(a.call) };
  });
  const scored = labelled.flatMap((s) => (s.screening[c]?.p !== undefined ? [{ p: s.screening[c]!.p!, truth: truth(s) }] : []));
  return {
    condition: c,
    label: CONDITIONS.find((d) => d.id === c)!.label,
    ...binarySummary(labelled.length, cases, unscored, o),
    calibration: calibration(scored, o.bins),
    operatingPoint: thresholdForSensitivity(scored, o.targetSensitivity),
  };
}

/** Reference referable DR: ICDR >= 2 or macular edema; undefined when the labels cannot say. */
export function referableTruth(l: Labels): boolean | undefined {
  const me = l.conditions['macular-edema'];
  if ((l.icdrGrade ?? -1) >= 2 || me === true) return true;
  return l.icdrGrade !== undefined && me === false ? false : undefined;
}

/** The service's referable-DR call or its macular-edema call; undefined (not asked) / null (unparseable). */
export function referablePredicted(s: ScoredImage): boolean | null | undefined {
  const dr = s.referableDrCall;
  const me = s.screening['macular-edema']?.call;
  if (dr === undefined && me === undefined) return undefined;
  if ((dr && flagged(dr)) || (me && flagged(me))) return true;
  return dr === 'negative' && me === 'negative' ? false : null;
}

function referableSummary(images: readonly ScoredImage[], o: SummaryOptions): Summary['referableDr'] {
  const labelled = images.filter((s) => referableTruth(s.labels) !== undefined);
  const { cases, unscored } = collect(labelled, (s) => {
    const p = referablePredicted(s);
    return p === undefined || p === null ? p : { truth: referableTruth(s.labels)!, predicted: p };
  });
  const graded = images.filter((s) => s.labels.icdrGrade !== undefined && s.pReferableDr !== undefined);
  const scored = graded.map((s) => ({ p: s.pReferableDr!, truth: s.labels.icdrGrade! >= 2 }));
  return { ...binarySummary(labelled.length, cases, unscored, o), calibration: calibration(scored, o.bins), operatingPoint: thresholdForSensitivity(scored, o.targetSensitivity) };
}

function drStageSummary(images: readonly ScoredImage[], o: SummaryOptions): Summary['drStage'] {
  const labelled = images.filter((s) => s.labels.icdrGrade !== undefined);
  const { cases, unscored } = collect(labelled, (s) => (s.drGrade === undefined || s.drGrade === null ? s.drGrade : { truth: s.labels.icdrGrade!, predicted: s.drGrade }));
  const acc = (xs: readonly { truth: number; predicted: number }[]) => accuracy(confusionMatrix(xs, 5));
  const kappa = (xs: readonly { truth: number; predicted: number }[]) => quadraticWeightedKappa(confusionMatrix(xs, 5));
  return { labelled: labelled.length, scored: cases.length, unscored, confusion: confusionMatrix(cases, 5), accuracy: estimate(cases, acc, o), kappa: estimate(cases, kappa, o) };
}

function macularHoleSummary(images: readonly ScoredImage[]): Summary['macularHole'] {
  const labelled = images.filter((s) => s.labels.macularHoleStage !== undefined);
  const { cases, unscored } = collect(labelled, (s) => (s.macularHoleStage === undefined || s.macularHoleStage === null ? s.macularHoleStage : s.macularHoleStage === s.labels.macularHoleStage));
  return { labelled: labelled.length, scored: cases.length, unscored, accuracy: cases.length ? cases.filter(Boolean).length / cases.length : null };
}

function imageSummary(images: readonly ScoredImage[], reasons: Record<string, number>): Summary['images'] {
  const byOutcome: Record<Outcome, number> = { assessed: 0, ungradable: 0, rejected: 0, 'not-assessed': 0 };
  for (const s of images) byOutcome[s.outcome] += 1;
  const total = images.length;
  return { total, byOutcome, reasons, ungradableRate: total ? (byOutcome.ungradable + byOutcome.rejected) / total : null };
}

/** `reasons`: gate and rejection reasons counted over the images (from the stored results). */
export function summarise(images: readonly ScoredImage[], reasons: Record<string, number>, o: SummaryOptions): Summary {
  const screening = CONDITIONS.map((c) => conditionSummary(images, c.id, o));
  const f1s = screening.map((c) => c.f1.value).filter((v): v is number => v !== null);
  const pooled = screening.flatMap((c) => images.flatMap((s) => {
    const p = s.screening[c.condition]?.p;
    const t = s.labels.conditions[c.condition];
    return p !== undefined && t !== undefined ? [{ p, truth: t }] : [];
  }));
  const referableDr = referableSummary(images, o);
  return {
    images: imageSummary(images, reasons),
    screening,
    meanF1: { value: f1s.length ? f1s.reduce((a, b) => a + b, 0) / f1s.length : null, conditions: f1s.length },
    drStage: drStageSummary(images, o),
    referableDr,
    macularHole: macularHoleSummary(images),
    calibration: { screening: calibration(pooled, o.bins), referableDr: referableDr.calibration },
  };
}
