/**
 * Validation metrics, pure: binary counts and their rates, ordinal agreement (accuracy, quadratic
 * weighted kappa), calibration (reliability bins, expected calibration error), percentile bootstrap
 * intervals from a seeded generator, and the lowest-specificity-cost threshold for a target sensitivity.
 * A rate whose denominator is 0 is `null` (undefined), never 0.
 */
import { seededUniform } from '../model/snapshot/random-snapshot.js';

/** One case of a binary question: the reference standard and the test's call. */
export interface BinaryPair {
  truth: boolean;
  predicted: boolean;
}

export interface BinaryCounts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface BinaryRates {
  sensitivity: number | null;
  specificity: number | null;
  ppv: number | null;
  f1: number | null;
}

export function countBinary(pairs: readonly BinaryPair[]): BinaryCounts {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (const { truth, predicted } of pairs) {
    if (truth) predicted ? c.tp++ : c.fn++;
    else predicted ? c.fp++ : c.tn++;
  }
  return c;
}

const ratio = (num: number, den: number): number | null => (den > 0 ? num / den : null);

export function binaryRates(c: BinaryCounts): BinaryRates {
  return {
    sensitivity: ratio(c.tp, c.tp + c.fn),
    specificity: ratio(c.tn, c.tn + c.fp),
    ppv: ratio(c.tp, c.tp + c.fp),
    f1: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
  };
}

/** k×k confusion matrix, rows = reference class, columns = predicted class (classes 0…k−1). */
export function confusionMatrix(pairs: readonly { truth: number; predicted: number }[], k: number): number[][] {
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (const { truth, predicted } of pairs) {
    if (!(truth >= 0 && truth < k && predicted >= 0 && predicted < k)) throw new RangeError(`class outside 0..${k - 1}`);
    m[truth]![predicted]! += 1;
  }
  return m;
}

export function accuracy(m: readonly (readonly number[])[]): number | null {
  let diag = 0;
  let total = 0;
  m.forEach((row, i) => row.forEach((v, j) => {
    total += v;
    if (i === j) diag += v;
  }));
  return ratio(diag, total);
}

/**
 * Cohen's kappa with quadratic weights w_ij = (i−j)²/(k−1)²: 1 − Σw·O / Σw·E, E from the marginals.
 * null when every case falls where the expected disagreement is 0 (one class only on both sides).
 */
export function quadraticWeightedKappa(m: readonly (readonly number[])[]): number | null {
  const k = m.length;
  const n = m.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  if (n === 0 || k < 2) return null;
  const rows = m.map((row) => row.reduce((a, b) => a + b, 0));
  const cols = m[0]!.map((_, j) => m.reduce((s, row) => s + row[j]!, 0));
  let observed = 0;
  let expected = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const w = (i - j) ** 2 / (k - 1) ** 2;
      observed += (w * m[i]![j]!) / n;
      expected += (w * rows[i]! * cols[j]!) / (n * n);
    }
  }
  return expected > 0 ? 1 - observed / expected : null;
}

/** A probability of the positive answer and whether the reference standard says positive. */
export interface ScoredCase {
  p: number;
  truth: boolean;
}

export interface ReliabilityBin {
  lower: number;
  upper: number;
  n: number;
  /** Mean predicted probability in the bin (null when empty). */
  meanP: number | null;
  /** Fraction of reference-positive cases in the bin (null when empty). */
  observed: number | null;
}

/** Equal-width bins over [0, 1]; p = 1 falls in the last bin. */
export function reliabilityBins(cases: readonly ScoredCase[], bins = 10): ReliabilityBin[] {
  const acc = Array.from({ length: bins }, () => ({ n: 0, sumP: 0, pos: 0 }));
  for (const { p, truth } of cases) {
    if (!(p >= 0 && p <= 1)) throw new RangeError('probability outside [0, 1]');
    const b = acc[Math.min(bins - 1, Math.floor(p * bins))]!;
    b.n += 1;
    b.sumP += p;
    if (truth) b.pos += 1;
  }
  return acc.map((b, i) => ({
    lower: i / bins, upper: (i + 1) / bins, n: b.n,
    meanP: b.n ? b.sumP / b.n : null, observed: b.n ? b.pos / b.n : null,
  }));
}

/** Expected calibration error: Σ_b (n_b / N) · |observed_b − meanP_b|. null without cases. */
export function expectedCalibrationError(bins: readonly ReliabilityBin[]): number | null {
  const total = bins.reduce((s, b) => s + b.n, 0);
  if (total === 0) return null;
  return bins.reduce((s, b) => (b.n ? s + (b.n / total) * Math.abs(b.observed! - b.meanP!) : s), 0);
}

export interface Interval {
  lower: number;
  upper: number;
}

export interface BootstrapOptions {
  /** Resamples (default 1000). */
  resamples?: number;
  seed: number;
  /** Two-sided level (default 0.95). */
  level?: number;
}

/** Quantile with linear interpolation between order statistics (Hyndman–Fan type 7) of sorted values. */
export function quantileSorted(sorted: readonly number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/**
 * Percentile bootstrap: `resamples` samples of the cases drawn with replacement (indices from a mulberry32
 * generator seeded with `seed`, n draws per sample), the statistic on each, the central `level` interval of
 * the defined values. null when the statistic is undefined on every sample (or there are no cases).
 */
export function bootstrapInterval<T>(cases: readonly T[], stat: (sample: readonly T[]) => number | null, opts: BootstrapOptions): Interval | null {
  const n = cases.length;
  if (n === 0) return null;
  const rand = seededUniform(opts.seed);
  const values: number[] = [];
  const sample = new Array<T>(n);
  for (let r = 0; r < (opts.resamples ?? 1000); r++) {
    for (let i = 0; i < n; i++) sample[i] = cases[Math.floor(rand() * n)]!;
    const v = stat(sample);
    if (v !== null && Number.isFinite(v)) values.push(v);
  }
  if (values.length === 0) return null;
  values.sort((a, b) => a - b);
  const alpha = (1 - (opts.level ?? 0.95)) / 2;
  return { lower: quantileSorted(values, alpha), upper: quantileSorted(values, 1 - alpha) };
}

export interface OperatingPoint {
  /** Flag a case when p >= threshold. */
  threshold: number;
  sensitivity: number;
  specificity: number | null;
  positives: number;
  negatives: number;
}

/**
 * The highest threshold t whose rule "p >= t" reaches `target` sensitivity on these cases: the
 * ⌈target·P⌉-th highest probability among the P reference-positive cases. A higher threshold could only
 * miss more positives; a lower one only flags more negatives. null without positive cases.
 */
export function thresholdForSensitivity(cases: readonly ScoredCase[], target: number): OperatingPoint | null {
  if (!(target > 0 && target <= 1)) throw new RangeError('target sensitivity must be in (0, 1]');
  const pos = cases.filter((c) => c.truth).map((c) => c.p).sort((a, b) => b - a);
  const neg = cases.filter((c) => !c.truth).map((c) => c.p);
  if (pos.length === 0) return null;
  const k = Math.max(1, Math.ceil(target * pos.length - 1e-9));
  const threshold = pos[k - 1]!;
  return {
    threshold,
    sensitivity: pos.filter((p) => p >= threshold).length / pos.length,
    specificity: ratio(neg.filter((p) => p < threshold).length, neg.length),
    positives: pos.length,
    negatives: neg.length,
  };
}
