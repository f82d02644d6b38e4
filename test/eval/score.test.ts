/**
 * Scoring through the service's own findings code, the summary's definitions on a synthetic table, and
 * the site operating points (thresholds file) produced from it and read back.
 */
import { describe, expect, it } from 'vitest';
import { siteThresholds } from '../../src/eval/operating-points.js';
import { EVAL_TEST_MODEL_BANNER } from '../../src/eval/report.js';
import { evalFindingsConfig, scoreImage } from '../../src/eval/score.js';
import { referablePredicted, referableTruth, summarise } from '../../src/eval/summary.js';
import type { ImageResult, ScoredImage } from '../../src/eval/types.js';
import { parseSiteThresholds, siteThresholdOverrides } from '../../src/findings/site-thresholds.js';
import type { ModelAnswer } from '../../src/findings/types.js';

const HASH = 'ab'.repeat(32);
const IMG = `img-${HASH.slice(0, 16)}`;
const bool = (text: 'TRUE' | 'FALSE', pTrue: number, greedyIsCandidate = true): ModelAnswer => ({ text, candidates: { TRUE: pTrue, FALSE: 1 - pTrue }, greedyIsCandidate });

function fundusResult(answers: Record<string, ModelAnswer>): ImageResult {
  return {
    key: 'a.jpg', fileSha256: HASH, outcome: 'assessed', reasons: [],
    image: { contentHash: HASH, eye: 'right', modality: 'OP', provenance: { via: 'inline' }, gradability: { status: 'gradable', reasons: [] } },
    answers,
  };
}

describe('scoreImage: the service decides', () => {
  const result = fundusResult({
    [`screening:amd:${IMG}`]: bool('TRUE', 0.9),
    [`screening:glaucoma:${IMG}`]: bool('FALSE', 0.5),
    [`screening:macular-edema:${IMG}`]: bool('FALSE', 0.1),
    [`screening:retinal-drusen:${IMG}`]: bool('FALSE', 0.3),
    [`screening:choroidal-nevus:${IMG}`]: bool('FALSE', 0.1, false),
    [`dr-stage:${IMG}`]: { text: '3', candidates: { 0: 0.1, 1: 0.1, 2: 0.2, 3: 0.5, 4: 0.1 }, greedyIsCandidate: true },
  });

  it('positive, indeterminate (in the band), negative, unparseable (not a candidate), grade and referable DR', () => {
    const s = scoreImage(result, { conditions: {} }, evalFindingsConfig());
    expect(s.screening.amd).toEqual({ call: 'positive', p: 0.9 });
    expect(s.screening.glaucoma).toEqual({ call: 'indeterminate', p: 0.5 });
    expect(s.screening['macular-edema']).toEqual({ call: 'negative', p: 0.1 });
    expect(s.screening['choroidal-nevus']!.call).toBe('unparseable');
    expect(s.screening['retinal-hemorrhage']!.call).toBe('unparseable'); // planned, no answer
    expect(s.drGrade).toBe(3);
    expect(s.pReferableDr).toBeCloseTo(0.8, 12);
    expect(s.referableDrCall).toBe('positive');
  });

  it('a site band for one condition changes that call only (VOLMO_FINDINGS_THRESHOLDS_FILE semantics)', () => {
    const site = evalFindingsConfig({ conditionBands: { 'retinal-drusen': { lower: 0.25, upper: 0.65 } }, referableDrBand: { lower: 0.85, upper: 0.9 } });
    const before = scoreImage(result, { conditions: {} }, evalFindingsConfig());
    const after = scoreImage(result, { conditions: {} }, site);
    expect(before.screening['retinal-drusen']!.call).toBe('negative');
    expect(after.screening['retinal-drusen']!.call).toBe('indeterminate');
    expect(after.screening['macular-edema']!.call).toBe('negative');
    // P(ICDR >= 2) = 0.8 is below the site's lower cut-off 0.85 while the text grade is 3: contradiction -> indeterminate.
    expect(after.referableDrCall).toBe('indeterminate');
  });

  it('ungradable, rejected and OCT images carry no screening calls', () => {
    expect(scoreImage({ key: 'u', fileSha256: HASH, outcome: 'ungradable', reasons: ['too_dark'] }, { conditions: { amd: true } }, evalFindingsConfig()).screening).toEqual({});
    const oct = fundusResult({ [`mh-stage:${IMG}`]: { text: '4', candidates: { 2: 0.2, 3: 0.2, 4: 0.6 }, greedyIsCandidate: true } });
    oct.image = { ...oct.image!, modality: 'OPT', gradability: { status: 'unchecked', reasons: [] } };
    const s = scoreImage(oct, { conditions: {} }, evalFindingsConfig());
    expect(s.screening).toEqual({});
    expect(s.macularHoleStage).toBe(4);
    expect(s.drGrade).toBeUndefined();
  });
});

const scored = (p: Partial<ScoredImage>): ScoredImage => ({ key: 'k', outcome: 'assessed', labels: { conditions: {} }, screening: {}, ...p });

describe('summary definitions on a synthetic table', () => {
  it('referable DR: reference ICDR >= 2 or macular edema; service DR call or macular-edema call', () => {
    expect(referableTruth({ icdrGrade: 2, conditions: {} })).toBe(true);
    expect(referableTruth({ icdrGrade: 1, conditions: { 'macular-edema': true } })).toBe(true);
    expect(referableTruth({ icdrGrade: 1, conditions: { 'macular-edema': false } })).toBe(false);
    expect(referableTruth({ icdrGrade: 1, conditions: {} })).toBeUndefined();
    expect(referablePredicted(scored({ referableDrCall: 'negative', screening: { 'macular-edema': { call: 'indeterminate' } } }))).toBe(true);
    expect(referablePredicted(scored({ referableDrCall: 'negative', screening: { 'macular-edema': { call: 'negative' } } }))).toBe(false);
    expect(referablePredicted(scored({ referableDrCall: 'negative', screening: { 'macular-edema': { call: 'unparseable' } } }))).toBeNull();
    expect(referablePredicted(scored({}))).toBeUndefined();
  });

  const table: ScoredImage[] = [
    // AMD: TP, TP (indeterminate counts as flagged), FN, FP, TN, TN; one unparseable, one ungradable, one rejected.
    scored({ labels: { conditions: { amd: true }, icdrGrade: 0 }, screening: { amd: { call: 'positive', p: 0.9 } }, drGrade: 0 }),
    scored({ labels: { conditions: { amd: true }, icdrGrade: 2 }, screening: { amd: { call: 'indeterminate', p: 0.5 } }, drGrade: 2 }),
    scored({ labels: { conditions: { amd: true }, icdrGrade: 4 }, screening: { amd: { call: 'negative', p: 0.2 } }, drGrade: 3 }),
    scored({ labels: { conditions: { amd: false }, icdrGrade: 1 }, screening: { amd: { call: 'positive', p: 0.7 } }, drGrade: 1 }),
    scored({ labels: { conditions: { amd: false } }, screening: { amd: { call: 'negative', p: 0.1 } } }),
    scored({ labels: { conditions: { amd: false } }, screening: { amd: { call: 'negative', p: 0.3 } } }),
    scored({ labels: { conditions: { amd: true } }, screening: { amd: { call: 'unparseable', p: 0.6 } }, drGrade: null }),
    scored({ outcome: 'ungradable', labels: { conditions: { amd: true }, icdrGrade: 2 } }),
    scored({ outcome: 'rejected', labels: { conditions: { amd: false } } }),
  ];
  const s = summarise(table, { too_dark: 1, corrupt: 1 }, { resamples: 200, seed: 3, targetSensitivity: 0.75, bins: 10 });

  it('counts, rates, unscored reasons and the ungradable rate', () => {
    const amd = s.screening.find((c) => c.condition === 'amd')!;
    expect(amd.counts).toEqual({ tp: 2, fn: 1, fp: 1, tn: 2 });
    expect(amd.labelled).toBe(9);
    expect(amd.unscored).toEqual({ ungradable: 1, rejected: 1, notAssessed: 0, notAsked: 0, unparseable: 1 });
    expect(amd.sensitivity.value).toBeCloseTo(2 / 3, 12);
    expect(amd.specificity.value).toBeCloseTo(2 / 3, 12);
    expect(amd.ppv.value).toBeCloseTo(2 / 3, 12);
    expect(amd.f1.value).toBeCloseTo(2 / 3, 12);
    expect(amd.sensitivity.ci!.lower).toBeLessThanOrEqual(2 / 3);
    expect(amd.calibration.n).toBe(7); // every answer with probabilities, the unparseable one included
    // positives' p: 0.9, 0.6, 0.5, 0.2 -> 3rd highest for 75%: 0.5; negatives below 0.5: 0.1, 0.3 of 0.1, 0.3, 0.7.
    expect(amd.operatingPoint).toEqual({ threshold: 0.5, sensitivity: 0.75, specificity: 2 / 3, positives: 4, negatives: 3 });
    expect(s.screening.find((c) => c.condition === 'glaucoma')!.labelled).toBe(0);
    expect(s.meanF1).toEqual({ value: amd.f1.value, conditions: 1 });
    expect(s.images).toEqual({ total: 9, byOutcome: { assessed: 7, ungradable: 1, rejected: 1, 'not-assessed': 0 }, reasons: { too_dark: 1, corrupt: 1 }, ungradableRate: 2 / 9 });
  });

  it('DR stage: confusion, accuracy and kappa over parsed grades', () => {
    expect(s.drStage.labelled).toBe(5);
    expect(s.drStage.scored).toBe(4);
    expect(s.drStage.unscored.ungradable).toBe(1);
    expect(s.drStage.accuracy.value).toBe(0.75);
    expect(s.drStage.confusion[4]).toEqual([0, 0, 0, 1, 0]);
    // pairs (0,0),(2,2),(4,3),(1,1), weights (i-j)²/16: observed (1/16)/4 = 1/64; expected Σ(i-j)² over
    // reference {0,1,2,4} × model {0,1,2,3} = 14+6+6+30 = 56, /16/16 -> 56/256. Kappa = 1 - (1/64)/(56/256) = 13/14.
    expect(s.drStage.kappa.value).toBeCloseTo(13 / 14, 12);
  });

  it('the thresholds file: bands from the operating points, read back by the service validator', () => {
    const cfg = evalFindingsConfig();
    const t = siteThresholds(s, cfg, { name: 'm', version: '1', manifestSha256: 'f'.repeat(64), executionProvider: 'cpu', random: true }, 0.75, '2025-01-01T00:00:00Z');
    expect(t.screening).toEqual({ amd: { lower: 0.5, upper: 0.65 } });
    expect(t.banner).toBe(EVAL_TEST_MODEL_BANNER);
    expect(t.evidence!.amd).toMatchObject({ threshold: 0.5, warning: expect.stringMatching(/only 4 reference positives/) });
    const back = parseSiteThresholds(JSON.parse(JSON.stringify(t)), 'thresholds.json');
    expect(siteThresholdOverrides(back)).toEqual({ conditionBands: { amd: { lower: 0.5, upper: 0.65 } } });
  });
});
