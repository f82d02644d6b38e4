import { describe, expect, it } from 'vitest';
import { aggregateFindings } from '../../src/findings/aggregate.js';
import { callFromProbability, normaliseCandidates, probabilityAtLeast } from '../../src/findings/confidence.js';
import { DEFAULT_FINDINGS_CONFIG, resolveFindingsConfig, type FindingsConfig } from '../../src/findings/config.js';
import type { ExamFindings } from '../../src/findings/findings-types.js';
import { planTasks } from '../../src/findings/plan.js';
import type { ExamContext, ModelAnswer } from '../../src/findings/types.js';
import {
  DIABETIC, FALSE_ANSWER, TRUE_ANSWER, UNGRADABLE, answersFor, context, diabeticAnswers, gradeAnswer, image,
} from './exam-fixtures.js';

function run(ctx: ExamContext, overrides: Record<string, ModelAnswer>, cfg: FindingsConfig = DEFAULT_FINDINGS_CONFIG): ExamFindings {
  const plan = planTasks(ctx, cfg);
  return aggregateFindings(ctx, plan, answersFor(plan, overrides), cfg);
}
const eye = (f: ExamFindings, e: string) => f.eyes.find((x) => x.eye === e)!;
const cond = (f: ExamFindings, e: string, c: string) => eye(f, e).screening.find((x) => x.condition === c)!;

describe('confidence', () => {
  it('normalises over the candidate tokens, ignoring SentencePiece prefixes and other tokens', () => {
    const d = normaliseCandidates({ '▁TRUE': 0.3, ' FALSE': 0.1, The: 0.6 }, ['TRUE', 'FALSE'])!;
    expect(Object.keys(d)).toEqual(['TRUE', 'FALSE']);
    expect(d.TRUE).toBeCloseTo(0.75);
    expect(d.FALSE).toBeCloseTo(0.25);
    expect(normaliseCandidates({ true: 0.2, False: 0.2 }, ['TRUE', 'FALSE'])).toEqual({ TRUE: 0.5, FALSE: 0.5 });
  });
  it('returns undefined for missing, invalid or massless probabilities', () => {
    expect(normaliseCandidates(undefined, ['TRUE'])).toBeUndefined();
    expect(normaliseCandidates({ TRUE: Number.NaN }, ['TRUE', 'FALSE'])).toBeUndefined();
    expect(normaliseCandidates({ TRUE: 1.5 }, ['TRUE', 'FALSE'])).toBeUndefined();
    expect(normaliseCandidates({ maybe: 0.9 }, ['TRUE', 'FALSE'])).toBeUndefined();
  });
  it('applies the band with an explicit indeterminate zone', () => {
    const band = { lower: 0.35, upper: 0.65 };
    expect([0.9, 0.66, 0.65, 0.5, 0.35, 0.34, 0].map((p) => callFromProbability(p, band))).toEqual([
      'positive', 'positive', 'indeterminate', 'indeterminate', 'indeterminate', 'negative', 'negative',
    ]);
    expect(probabilityAtLeast({ '0': 0.1, '1': 0.2, '2': 0.3, '3': 0.25, '4': 0.15 }, 2)).toBeCloseTo(0.7);
  });
});

describe('aggregateFindings: diabetic patient, both eyes staged', () => {
  const plan = planTasks(DIABETIC, DEFAULT_FINDINGS_CONFIG);
  const f = aggregateFindings(DIABETIC, plan, diabeticAnswers(plan), DEFAULT_FINDINGS_CONFIG);
  it('stages each eye with the probability of the grade and P(grade >= 2)', () => {
    expect(eye(f, 'right').drStage).toMatchObject({ status: 'graded', grade: 2, referable: 'positive', inconsistent: false });
    expect(eye(f, 'right').drStage.confidence).toBeCloseTo(0.72);
    expect(eye(f, 'right').drStage.pReferable).toBeCloseTo(0.72 + 2 * 0.07);
    expect(eye(f, 'left').drStage).toMatchObject({ status: 'graded', grade: 3 });
  });
  it('reports screening with confidence of the stated answer', () => {
    expect(cond(f, 'right', 'diabetic-retinopathy')).toMatchObject({ status: 'positive', imageIds: ['r1'] });
    expect(cond(f, 'right', 'diabetic-retinopathy').confidence).toBeCloseTo(0.91);
    expect(cond(f, 'right', 'glaucoma').status).toBe('negative');
    expect(cond(f, 'right', 'glaucoma').confidence).toBeCloseTo(0.93);
    expect(cond(f, 'left', 'macular-edema').status).toBe('positive');
  });
  it('severe NPDR in one eye makes the referral urgent, worst eye first', () => {
    expect(f.referral.urgency).toBe('urgent');
    expect(f.referral.reasons[0]).toMatch(/left eye: ICDR 3, severe/);
    expect(f.flags).toEqual([]);
    expect(f.assessPlan.map((s) => s.step)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('consistency checks flag, never resolve', () => {
  it('screening says no DR but staging says grade 3', () => {
    const f = run(DIABETIC, { 'dr-stage:r1': gradeAnswer(3, 0.8) });
    expect(cond(f, 'right', 'diabetic-retinopathy')).toMatchObject({ status: 'negative', inconsistent: true });
    expect(eye(f, 'right').drStage).toMatchObject({ grade: 3, inconsistent: true });
    expect(f.flags.map((x) => [x.code, x.eye])).toContainEqual(['dr-screen-negative-but-staged', 'right']);
    expect(f.referral.urgency).toBe('urgent');
  });
  it('screening says DR but staging says grade 0', () => {
    const f = run(DIABETIC, { 'screening:diabetic-retinopathy:l1': TRUE_ANSWER(0.9) });
    expect(f.flags.map((x) => x.code)).toContain('dr-screen-positive-but-stage-zero');
    expect(eye(f, 'left').drStage).toMatchObject({ grade: 0, inconsistent: true });
    expect(f.referral.urgency).toBe('soon');
  });
  it('two images of one eye graded differently: highest grade, flagged', () => {
    const ctx = context([image('r1', 'right'), image('r2', 'right'), image('l1', 'left')]);
    const f = run(ctx, { 'dr-stage:r1': gradeAnswer(1, 0.9), 'dr-stage:r2': gradeAnswer(2, 0.9) });
    expect(eye(f, 'right').drStage).toMatchObject({ grade: 2, imageIds: ['r1', 'r2'], inconsistent: true });
    expect(f.flags.some((x) => x.code === 'images-disagree' && x.eye === 'right')).toBe(true);
  });
  it('answer text contradicting the token probabilities -> indeterminate and flagged', () => {
    const f = run(DIABETIC, { 'screening:glaucoma:r1': { text: 'TRUE', candidates: { TRUE: 0.1, FALSE: 0.9 } } });
    expect(cond(f, 'right', 'glaucoma').status).toBe('indeterminate');
    expect(f.flags.map((x) => x.code)).toContain('probability-contradicts-text');
  });
});

describe('thresholds', () => {
  it('P(TRUE) inside the screening band -> indeterminate -> referral soon', () => {
    const f = run(DIABETIC, { 'screening:amd:r1': TRUE_ANSWER(0.55) });
    expect(cond(f, 'right', 'amd').status).toBe('indeterminate');
    expect(f.referral.urgency).toBe('soon');
  });
  it('a narrower band turns the same answer into a positive', () => {
    const cfg = resolveFindingsConfig({ screeningBand: { lower: 0.5, upper: 0.5 } });
    expect(cond(run(DIABETIC, { 'screening:amd:r1': TRUE_ANSWER(0.55) }, cfg), 'right', 'amd').status).toBe('positive');
  });
  it('grade 1 with P(grade >= 2) in the indeterminate band', () => {
    const f = run(DIABETIC, { 'dr-stage:r1': { text: '1', candidates: { '0': 0.2, '1': 0.45, '2': 0.3, '3': 0.05, '4': 0 } } });
    expect(eye(f, 'right').drStage).toMatchObject({ grade: 1, referable: 'indeterminate' });
    expect(eye(f, 'right').drStage.pReferable).toBeCloseTo(0.35);
    expect(f.referral.urgency).toBe('soon');
  });
  it('without probabilities the grade alone decides referability', () => {
    const f = run(DIABETIC, { 'dr-stage:r1': { text: '2' }, 'dr-stage:l1': { text: '1' } });
    expect(eye(f, 'right').drStage).toMatchObject({ referable: 'positive', confidence: undefined });
    expect(eye(f, 'left').drStage.referable).toBe('negative');
  });
});

describe('ungradable, unparseable and missing evidence', () => {
  it('ungradable eye is explicit and refers by default', () => {
    const f = run(UNGRADABLE, {});
    expect(eye(f, 'left').drStage.status).toBe('ungradable');
    expect(cond(f, 'left', 'amd').status).toBe('ungradable');
    expect(f.flags).toContainEqual({ code: 'ungradable-image', eye: 'left', message: 'image l1 is ungradable: out of focus; media opacity' });
    expect(f.referral).toEqual({ urgency: 'soon', reasons: ['left eye: fundus image(s) ungradable'] });
  });
  it('ungradable as a referral trigger is configurable', () => {
    const f = run(UNGRADABLE, {}, resolveFindingsConfig({ ungradableRefers: false }));
    expect(f.referral.urgency).toBe('routine');
  });
  it('unparseable staging is never guessed; referral undetermined when nothing else refers', () => {
    const f = run(DIABETIC, { 'dr-stage:r1': { text: 'Grade: 2' } });
    expect(eye(f, 'right').drStage).toMatchObject({ status: 'unparseable' });
    expect(eye(f, 'right').drStage.grade).toBeUndefined();
    expect(f.flags.map((x) => x.code)).toContain('unparseable-answer');
    expect(f.referral.urgency).toBe('undetermined');
  });
  it('a missing answer counts as unparseable', () => {
    const ctx = DIABETIC;
    const plan = planTasks(ctx, DEFAULT_FINDINGS_CONFIG);
    const answers = answersFor(plan);
    delete answers['screening:amd:l1'];
    expect(cond(aggregateFindings(ctx, plan, answers, DEFAULT_FINDINGS_CONFIG), 'left', 'amd').status).toBe('unparseable');
  });
  it('no images at all: both eyes not assessed, referral undetermined', () => {
    const f = run(context([]), {});
    expect(f.eyes.map((e) => [e.eye, e.drStage.status])).toEqual([['right', 'not-assessed'], ['left', 'not-assessed']]);
    expect(f.referral).toEqual({ urgency: 'undetermined', reasons: ['no gradable image was assessed'] });
  });
  it('gradable images but no parseable answer: the reason says so (not "no gradable image")', () => {
    const ctx = DIABETIC;
    const plan = planTasks(ctx, DEFAULT_FINDINGS_CONFIG);
    const garbage = Object.fromEntries(plan.tasks.map((t) => [t.key, { text: 'lorem ipsum' }]));
    const f = aggregateFindings(ctx, plan, garbage, DEFAULT_FINDINGS_CONFIG);
    expect(f.referral).toEqual({ urgency: 'undetermined', reasons: ['no model answer could be parsed; grade the images manually'] });
  });
  it('OCT only: macular-hole stage per eye from the OCT vocabulary', () => {
    const f = run(context([image('o1', 'left', 'OPT')]), { 'mh-stage:o1': { text: '1' } });
    expect(eye(f, 'left').macularHole).toMatchObject({ status: 'unparseable' });
    const g = run(context([image('o1', 'left', 'OPT')]), {});
    expect(eye(g, 'left').macularHole).toMatchObject({ status: 'graded', grade: 3 });
    expect(eye(g, 'left').macularHole.confidence).toBeCloseTo(0.8);
    expect(eye(g, 'left').drStage.status).toBe('not-assessed');
  });
  it('unknown laterality gets its own group', () => {
    const f = run(context([image('u1', 'unknown')]), { 'screening:glaucoma:u1': TRUE_ANSWER(0.9) });
    expect(f.eyes.map((e) => e.eye)).toEqual(['right', 'left', 'unknown']);
    expect(cond(f, 'unknown', 'glaucoma').status).toBe('positive');
  });
  it('the urgency never says less than the management plan (an RVO referral within a week is urgent)', () => {
    const f = run(DIABETIC, { 'screening:retinal-vascular-occlusion:r1': TRUE_ANSWER(0.9) });
    expect(f.managementPlan.referrals[0]).toMatchObject({ to: 'ophthalmology', withinDays: 7, priority: 'urgent' });
    expect(f.referral.urgency).toBe('urgent');
    expect(f.referral.reasons[0]).toMatch(/^management plan: URGENT: refer to ophthalmology within 1 week .*retinal-vascular-occlusion/);
    expect(f.referral.reasons).toContain('right eye: screening positive for retinal vascular occlusion');
  });
  it('a plan that asks no more than the ICDR rule leaves the urgency and its reasons as they were', () => {
    const f = run(DIABETIC, { 'screening:choroidal-nevus:r1': TRUE_ANSWER(0.9) });
    expect(f.managementPlan.referrals.map((r) => r.priority)).toEqual(['routine']);
    expect(f.referral).toEqual({ urgency: 'soon', reasons: ['right eye: screening positive for choroidal nevus'] });
  });
  it('all-negative gradable exam is routine', () => {
    expect(run(DIABETIC, {}).referral).toEqual({ urgency: 'routine', reasons: ['no referable finding in the assessed images'] });
  });
  it('FALSE answers with probabilities yield negative with confidence', () => {
    const f = run(DIABETIC, { 'screening:glaucoma:r1': FALSE_ANSWER(0.8) });
    expect(cond(f, 'right', 'glaucoma').confidence).toBeCloseTo(0.8);
  });
});
