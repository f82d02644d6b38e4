import { describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../../src/analysis/analyse.js';
import { modelCardPage } from '../../src/cds/model-card.js';
import type { CdsCard } from '../../src/cds/types.js';
import { eyeExamOrder } from '../../src/sandbox/orders.js';
import { ANALYSIS_EXTENSION, buildAnalysisCard, buildPendingCard, buildUnassessedCard, TEST_MODEL_LABEL } from '../../src/cds/cards.js';
import type { Problem } from '../../src/evidence/types.js';
import { reasonInWords } from '../../src/imaging/rejection.js';
import type { Urgency } from '../../src/findings/findings-types.js';

function result(urgency: Urgency, random: boolean, reasons = ['right eye: ICDR 3 (severe NPDR)']): AnalysisResult {
  return {
    model: { name: 'VOLMO-2B', version: '1.0', manifestSha256: 'abc', executionProvider: 'cuda', random },
    findings: {
      taskSetVersion: 'volmo-tasks/1.0.0',
      referral: { urgency, reasons },
      eyes: [
        {
          eye: 'right',
          images: [{ id: 'i1', modality: 'OP', gradable: true }],
          screening: [
            { condition: 'diabetic-retinopathy', status: 'positive', confidence: 0.91, imageIds: ['i1'], inconsistent: false },
            { condition: 'glaucoma', status: 'negative', confidence: 0.8, imageIds: ['i1'], inconsistent: false },
          ],
          drStage: { status: 'graded', grade: 3, confidence: 0.7, imageIds: ['i1'], inconsistent: false },
          macularHole: { status: 'not-assessed', imageIds: [], inconsistent: false },
        },
      ],
    },
    evidence: { problems: [{ kind: 'pacs_unreachable', severity: 'warning', source: 'pacs', message: 'PACS did not answer' }] },
  } as unknown as AnalysisResult;
}

const CTX = { analysisId: 'a-1', publicUrl: 'https://cds.example.org', patientId: 'p1' };

describe('CDS cards', () => {
  it.each([
    ['urgent', 'critical'],
    ['soon', 'warning'],
    ['routine', 'info'],
    ['undetermined', 'warning'],
  ] as const)('a %s referral from a real model is a %s card', (urgency, indicator) => {
    const card = buildAnalysisCard(result(urgency, false), CTX);
    expect(card.indicator).toBe(indicator);
    expect(card.summary.length).toBeLessThan(140);
    expect(card.summary).not.toContain(TEST_MODEL_LABEL);
    expect(card.detail).toContain('ICDR 3 (severe NPDR) (70%)');
    expect(card.detail).toContain('Diabetic retinopathy: positive (91%)');
    expect(card.detail).toContain('1 other screened condition(s) negative');
    expect(card.detail).toContain('PACS did not answer');
    expect(card.detail).toContain('pending clinician review');
  });

  it('output of a random-weight model is labelled and never alarms', () => {
    const card = buildAnalysisCard(result('urgent', true), CTX);
    expect(card.summary.startsWith(TEST_MODEL_LABEL)).toBe(true);
    expect(card.indicator).toBe('info');
    expect(card.detail).toMatch(/random weights/);
  });

  it('keeps summaries under 140 characters', () => {
    const card = buildAnalysisCard(result('soon', true, ['x'.repeat(300)]), CTX);
    expect(card.summary.length).toBeLessThan(140);
    expect(buildPendingCard(2, true, CTX).summary.length).toBeLessThan(140);
  });
});

/** The CDS Hooks 2.0.1 card rules (and Epic's), checked on any card. */
function expectConformantCard(card: CdsCard): void {
  expect(card.uuid).toMatch(/^[0-9a-f-]{36}$/);
  expect(card.summary.length).toBeGreaterThan(0);
  expect(card.summary.length).toBeLessThanOrEqual(140);
  expect(['info', 'warning', 'critical']).toContain(card.indicator);
  expect(card.source.label.length).toBeGreaterThan(0);
  expect(card.source.url).toBe('https://cds.example.org/model-card');
  expect(card.source.topic?.code).toMatch(/^[A-Za-z0-9]+$/);
  for (const s of card.suggestions ?? []) {
    expect(s.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.actions).toHaveLength(1);
    expect(['create', 'update', 'delete']).toContain(s.actions![0]!.type);
  }
  if (card.suggestions?.length) expect(card.selectionBehavior).toBe('any');
  for (const r of card.overrideReasons ?? []) expect(r.display.length).toBeGreaterThan(0);
  for (const l of card.links ?? []) {
    expect(['absolute', 'smart']).toContain(l.type);
    if (l.type === 'smart') expect(JSON.parse(l.appContext!)).toEqual({ analysis: 'a-1' });
  }
}

describe('cards a clinician can act on (issue 9 item 5)', () => {
  it('every card is conformant, with a fresh uuid per response and the analysis id in its link and extension', () => {
    const a = buildAnalysisCard(result('routine', false), CTX);
    const b = buildAnalysisCard(result('routine', false), CTX);
    const p = buildPendingCard(1, false, CTX);
    for (const c of [a, b, p]) {
      expectConformantCard(c);
      expect(c.extension?.[ANALYSIS_EXTENSION]).toBe('a-1');
    }
    expect(new Set([a.uuid, b.uuid, p.uuid]).size).toBe(3);
    expect(a.links).toEqual([{ label: 'Review the AI draft in VOLMO', url: 'https://cds.example.org/launch', type: 'smart', appContext: '{"analysis":"a-1"}' }]);
    expect(a.overrideReasons?.map((r) => r.code)).toContain('already-referred');
    expect(a.suggestions).toBeUndefined(); // routine: nothing to propose
  });

  it('an urgent finding proposes a referral and raising the eye order priority, one action each', () => {
    const order = { ...eyeExamOrder('p1', 'o1'), priority: 'routine' };
    const card = buildAnalysisCard(result('urgent', false), { ...CTX, eyeOrders: [order, { ...eyeExamOrder('p1', 'o2'), priority: 'stat' }] });
    expectConformantCard(card);
    expect(card.suggestions?.map((s) => s.label)).toEqual(['Add an urgent ophthalmology referral', "Raise this eye order's priority to urgent"]);
    const [create, update] = card.suggestions!.map((s) => s.actions![0]!);
    expect(create).toMatchObject({ type: 'create', resource: { resourceType: 'ServiceRequest', status: 'draft', intent: 'order', priority: 'urgent', subject: { reference: 'Patient/p1' } } });
    expect(update).toMatchObject({ type: 'update', resource: { resourceType: 'ServiceRequest', id: 'o1', priority: 'urgent' } });
  });

  it('a soon finding proposes a routine referral only; a random-weight model proposes nothing', () => {
    const soon = buildAnalysisCard(result('soon', false), { ...CTX, eyeOrders: [eyeExamOrder('p1')] });
    expect(soon.suggestions?.map((s) => s.actions![0]!.resource?.priority)).toEqual(['routine']);
    const random = buildAnalysisCard(result('urgent', true), { ...CTX, eyeOrders: [eyeExamOrder('p1')] });
    expectConformantCard(random);
    expect(random.suggestions).toBeUndefined();
    expect(random.selectionBehavior).toBeUndefined();
  });

  it('the model-card page names the loaded model and says so plainly for random weights', () => {
    const info = { name: 'volmo-tiny', version: '0', random: true, manifestSha256: 'f'.repeat(64), executionProvider: 'cpu', dtype: 'fp32' } as const;
    const page = modelCardPage(info);
    expect(page).toContain('volmo-tiny 0');
    expect(page).toContain(TEST_MODEL_LABEL);
    expect(modelCardPage({ ...info, name: '<script>x</script>', random: false })).not.toContain('<script>x');
    expect(modelCardPage(null)).toContain('No model is loaded');
  });

  it('says how many eye images could not be assessed and why, in words, never codes', () => {
    const p = (kind: Problem['kind'], reason: string): Problem => ({ kind, severity: 'warning', source: 'image:Media', message: `${reason}: detail`, reasons: [reason] });
    const card = buildUnassessedCard([p('image_rejected', 'too_many_pixels'), p('image_rejected', 'corrupt'), p('image_rejected', 'too_many_pixels'), { kind: 'missing_data', severity: 'warning', source: 'conditions', message: 'x' }], false, CTX)!;
    expect(card.summary).toBe('3 eye images could not be assessed: the image is larger (in pixels) than this service decodes');
    expect(card.detail).toContain('- 2 images: the image is larger (in pixels) than this service decodes');
    expect(card.detail).toContain('- 1 image: the file is damaged or incomplete');
    expect(`${card.summary}${card.detail}`).not.toMatch(/_/);
    expect(card.indicator).toBe('info');
    expect(buildUnassessedCard([p('pacs_unreachable', 'pacs_unreachable')], true, CTX)!.summary).toBe(`${TEST_MODEL_LABEL}: 1 eye image could not be assessed: the image archive (PACS) could not be reached`);
    expect(buildUnassessedCard([{ kind: 'missing_data', severity: 'info', source: 'images', message: 'none' }], false, CTX)).toBeUndefined();
  });

  it('has words for every reason code, and an unknown code still reads as words', () => {
    for (const code of ['too_dark', 'too_blurred', 'no_disc', 'no_fundus', 'study_pixel_limit', 'fetch_failed', 'pacs_unreachable']) {
      expect(reasonInWords(code)).not.toMatch(/_|quality or format check/);
    }
    expect(reasonInWords('not_a_fundus_photograph_v2')).toBe('the image failed a quality or format check (not a fundus photograph v2)');
    expect(reasonInWords('')).toBe('the image failed a quality or format check');
  });
});
