import { describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../../src/analysis/analyse.js';
import { buildAnalysisCard, buildPendingCard, buildUnassessedCard, TEST_MODEL_LABEL } from '../../src/cds/cards.js';
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

describe('CDS cards', () => {
  it.each([
    ['urgent', 'critical'],
    ['soon', 'warning'],
    ['routine', 'info'],
    ['undetermined', 'warning'],
  ] as const)('a %s referral from a real model is a %s card', (urgency, indicator) => {
    const card = buildAnalysisCard(result(urgency, false), { uuid: 'u' });
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
    const card = buildAnalysisCard(result('urgent', true), { uuid: 'u' });
    expect(card.summary.startsWith(TEST_MODEL_LABEL)).toBe(true);
    expect(card.indicator).toBe('info');
    expect(card.detail).toMatch(/random weights/);
  });

  it('keeps summaries under 140 characters', () => {
    const card = buildAnalysisCard(result('soon', true, ['x'.repeat(300)]), { uuid: 'u' });
    expect(card.summary.length).toBeLessThan(140);
    expect(buildPendingCard(2, true, { uuid: 'u' }).summary.length).toBeLessThan(140);
  });

  it('says how many eye images could not be assessed and why, in words, never codes', () => {
    const p = (kind: Problem['kind'], reason: string): Problem => ({ kind, severity: 'warning', source: 'image:Media', message: `${reason}: detail`, reasons: [reason] });
    const card = buildUnassessedCard([p('image_rejected', 'too_many_pixels'), p('image_rejected', 'corrupt'), p('image_rejected', 'too_many_pixels'), { kind: 'missing_data', severity: 'warning', source: 'conditions', message: 'x' }], { uuid: 'u', random: false })!;
    expect(card.summary).toBe('3 eye images could not be assessed: the image is larger (in pixels) than this service decodes');
    expect(card.detail).toContain('- 2 images: the image is larger (in pixels) than this service decodes');
    expect(card.detail).toContain('- 1 image: the file is damaged or incomplete');
    expect(`${card.summary}${card.detail}`).not.toMatch(/_/);
    expect(card.indicator).toBe('info');
    expect(buildUnassessedCard([p('pacs_unreachable', 'pacs_unreachable')], { uuid: 'u', random: true })!.summary).toBe(`${TEST_MODEL_LABEL}: 1 eye image could not be assessed: the image archive (PACS) could not be reached`);
    expect(buildUnassessedCard([{ kind: 'missing_data', severity: 'info', source: 'images', message: 'none' }], { uuid: 'u', random: false })).toBeUndefined();
  });

  it('has words for every reason code, and an unknown code still reads as words', () => {
    for (const code of ['too_dark', 'too_blurred', 'no_disc', 'no_fundus', 'study_pixel_limit', 'fetch_failed', 'pacs_unreachable']) {
      expect(reasonInWords(code)).not.toMatch(/_|quality or format check/);
    }
    expect(reasonInWords('not_a_fundus_photograph_v2')).toBe('the image failed a quality or format check (not a fundus photograph v2)');
    expect(reasonInWords('')).toBe('the image failed a quality or format check');
  });
});
