/** Each metric against values computed by hand on small synthetic tables. */
import { describe, expect, it } from 'vitest';
import {
  accuracy, binaryRates, bootstrapInterval, confusionMatrix, countBinary, expectedCalibrationError, quadraticWeightedKappa,
  quantileSorted, reliabilityBins, thresholdForSensitivity, type BinaryPair,
} from '../../src/eval/metrics.js';
import { seededUniform } from '../../src/model/snapshot/random-snapshot.js';

const pairs = (tp: number, fn: number, fp: number, tn: number): BinaryPair[] => [
  ...Array.from({ length: tp }, () => ({ truth: true, predicted: true })),
  ...Array.from({ length: fn }, () => ({ truth: true, predicted: false })),
  ...Array.from({ length: fp }, () => ({ truth: false, predicted: true })),
  ...Array.from({ length: tn }, () => ({ truth: false, predicted: false })),
];

describe('binary rates', () => {
  it('TP 4, FN 1, FP 2, TN 3: sensitivity 4/5, specificity 3/5, PPV 4/6, F1 8/11', () => {
    const c = countBinary(pairs(4, 1, 2, 3));
    expect(c).toEqual({ tp: 4, fn: 1, fp: 2, tn: 3 });
    const r = binaryRates(c);
    expect(r.sensitivity).toBeCloseTo(0.8, 12);
    expect(r.specificity).toBeCloseTo(0.6, 12);
    expect(r.ppv).toBeCloseTo(4 / 6, 12);
    expect(r.f1).toBeCloseTo(8 / 11, 12);
  });

  it('a rate with an empty denominator is null, not 0', () => {
    expect(binaryRates(countBinary(pairs(0, 0, 1, 2)))).toEqual({ sensitivity: null, specificity: 2 / 3, ppv: 0, f1: 0 });
    expect(binaryRates(countBinary(pairs(0, 0, 0, 3)))).toEqual({ sensitivity: null, specificity: 1, ppv: null, f1: null });
  });
});

describe('ordinal agreement', () => {
  it('quadratic weighted kappa of [[2,1,0],[0,2,1],[0,0,3]] is 5/6', () => {
    // weights (i-j)^2/4; observed 0.5/9; expected from marginals rows 3,3,3 and columns 2,3,4: 27/81.
    expect(quadraticWeightedKappa([[2, 1, 0], [0, 2, 1], [0, 0, 3]])).toBeCloseTo(5 / 6, 12);
  });

  it('perfect agreement is 1, agreement by chance alone is 0, one class only is undefined', () => {
    expect(quadraticWeightedKappa([[3, 0], [0, 2]])).toBe(1);
    expect(quadraticWeightedKappa([[1, 1], [1, 1]])).toBeCloseTo(0, 12);
    expect(quadraticWeightedKappa([[4, 0], [0, 0]])).toBeNull();
  });

  it('confusion matrix and accuracy from ICDR pairs', () => {
    const m = confusionMatrix([{ truth: 0, predicted: 0 }, { truth: 2, predicted: 3 }, { truth: 4, predicted: 4 }, { truth: 2, predicted: 2 }], 5);
    expect(m[2]).toEqual([0, 0, 1, 1, 0]);
    expect(accuracy(m)).toBe(0.75);
    expect(accuracy(confusionMatrix([], 5))).toBeNull();
    expect(() => confusionMatrix([{ truth: 5, predicted: 0 }], 5)).toThrow(RangeError);
  });
});

describe('calibration', () => {
  it('ECE on known bins: (2/8)·0.1 + (4/8)·0 + (2/8)·0.475 = 0.14375', () => {
    const cases = [
      { p: 0.1, truth: false }, { p: 0.1, truth: false },
      { p: 0.75, truth: true }, { p: 0.75, truth: true }, { p: 0.75, truth: false }, { p: 0.75, truth: true },
      { p: 1, truth: true }, { p: 0.95, truth: false },
    ];
    const bins = reliabilityBins(cases, 10);
    expect(bins[1]).toMatchObject({ n: 2, meanP: 0.1, observed: 0 });
    expect(bins[7]).toMatchObject({ n: 4, meanP: 0.75, observed: 0.75 });
    expect(bins[9]).toMatchObject({ n: 2, observed: 0.5 });
    expect(bins[9]!.meanP).toBeCloseTo(0.975, 12);
    expect(bins.filter((b) => b.n === 0).every((b) => b.meanP === null)).toBe(true);
    expect(expectedCalibrationError(bins)).toBeCloseTo(0.14375, 12);
  });

  it('no cases: no ECE; a probability outside [0, 1] is refused', () => {
    expect(expectedCalibrationError(reliabilityBins([], 10))).toBeNull();
    expect(() => reliabilityBins([{ p: 1.2, truth: true }], 10)).toThrow(RangeError);
  });
});

describe('bootstrap interval', () => {
  const data = pairs(8, 2, 3, 12);
  const sens = (xs: readonly BinaryPair[]) => binaryRates(countBinary(xs)).sensitivity;

  it('is deterministic for a seed and changes with it', () => {
    const xs = Array.from({ length: 25 }, (_, i) => (i * 37) % 11);
    const mean = (s: readonly number[]) => s.reduce((a, b) => a + b, 0) / s.length;
    const m = bootstrapInterval(xs, mean, { seed: 7, resamples: 500 });
    expect(bootstrapInterval(xs, mean, { seed: 7, resamples: 500 })).toEqual(m);
    expect(bootstrapInterval(xs, mean, { seed: 8, resamples: 500 })).not.toEqual(m);
    const a = bootstrapInterval(data, sens, { seed: 7, resamples: 500 });
    expect(bootstrapInterval(data, sens, { seed: 7, resamples: 500 })).toEqual(a);
    expect(a!.lower).toBeLessThanOrEqual(0.8);
    expect(a!.upper).toBeGreaterThanOrEqual(0.8);
    expect(a!.lower).toBeGreaterThanOrEqual(0);
    expect(a!.upper).toBeLessThanOrEqual(1);
  });

  it('draws n indices per resample from mulberry32(seed), as documented', () => {
    const xs = [1, 2, 3, 10];
    const mean = (s: readonly number[]) => s.reduce((a, b) => a + b, 0) / s.length;
    const rand = seededUniform(42);
    const first = Array.from({ length: 4 }, () => xs[Math.floor(rand() * 4)]!);
    expect(bootstrapInterval(xs, mean, { seed: 42, resamples: 1 })).toEqual({ lower: mean(first), upper: mean(first) });
  });

  it('percentiles interpolate between order statistics; constant data gives a point; undefined stats give null', () => {
    expect(quantileSorted([1, 2, 3, 4, 5], 0.025)).toBeCloseTo(1.1, 12);
    expect(quantileSorted([1, 2, 3, 4, 5], 0.975)).toBeCloseTo(4.9, 12);
    expect(bootstrapInterval([5, 5, 5], (s) => s[0]!, { seed: 1, resamples: 50 })).toEqual({ lower: 5, upper: 5 });
    expect(bootstrapInterval(pairs(0, 0, 2, 2), sens, { seed: 1, resamples: 50 })).toBeNull();
    expect(bootstrapInterval([], sens, { seed: 1 })).toBeNull();
  });
});

describe('threshold for a target sensitivity', () => {
  const cases = [
    ...[0.9, 0.8, 0.7, 0.6, 0.2].map((p) => ({ p, truth: true })),
    ...[0.65, 0.5, 0.1].map((p) => ({ p, truth: false })),
  ];

  it('takes the ⌈target·P⌉-th highest positive probability', () => {
    expect(thresholdForSensitivity(cases, 0.8)).toEqual({ threshold: 0.6, sensitivity: 0.8, specificity: 2 / 3, positives: 5, negatives: 3 });
    expect(thresholdForSensitivity(cases, 0.9)).toEqual({ threshold: 0.2, sensitivity: 1, specificity: 1 / 3, positives: 5, negatives: 3 });
    expect(thresholdForSensitivity(cases, 0.1)!.threshold).toBe(0.9);
  });

  it('ties count as flagged; no positives: none; a target outside (0, 1] is refused', () => {
    expect(thresholdForSensitivity([{ p: 0.5, truth: true }, { p: 0.5, truth: true }], 0.5)).toMatchObject({ threshold: 0.5, sensitivity: 1, specificity: null });
    expect(thresholdForSensitivity([{ p: 0.5, truth: false }], 0.9)).toBeNull();
    expect(() => thresholdForSensitivity(cases, 0)).toThrow(RangeError);
    expect(() => thresholdForSensitivity(cases, 1.5)).toThrow(RangeError);
  });
});
