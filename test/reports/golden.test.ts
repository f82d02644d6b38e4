/**
 * Golden files of the rendered note. Regenerate deliberately with UPDATE_GOLDEN=1 and review the diff.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DIABETIC, UNGRADABLE, answersFor, diabeticAnswers } from '../findings/exam-fixtures.js';
import { buildFor } from './report-fixtures.js';

const dir = fileURLToPath(new URL('./golden/', import.meta.url));

function golden(name: string, actual: string): void {
  const file = `${dir}${name}`;
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, actual);
  expect(existsSync(file), `missing golden file ${name}; run with UPDATE_GOLDEN=1`).toBe(true);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}

describe('rendered note (golden files)', () => {
  it('diabetic patient with both eyes staged', () => {
    const out = buildFor(DIABETIC, diabeticAnswers);
    golden('diabetic-both-eyes.txt', out.note.text);
    golden('diabetic-both-eyes.html', out.note.html);
  });
  it('ungradable image in the left eye', () => {
    const out = buildFor(UNGRADABLE, (plan) => answersFor(plan, {
      'describe:r1': { text: 'Colour fundus photograph of the right eye showing a healthy optic disc and macula.' },
      'assess-plan:1': { text: '[DIFFERENTIAL DIAGNOSIS]\n1. Diagnosis: Type 2 diabetes without retinopathy; Severity: None' },
      'assess-plan:2': { text: 'Diagnosis: No diabetic retinopathy in the right eye; Severity: None; Justification: no lesions seen.' },
      'assess-plan:3': { text: '1. Assessment: Left eye could not be assessed; Plan: Repeat imaging with dilation.' },
      'assess-plan:4': { text: '1. Treatment: None; Immediate outcome: N/A; Long-term outcome: N/A; Justification: no retinopathy.' },
      'assess-plan:5': { text: '1. Follow-up care: Re-image the left eye; Justification: ungradable photograph; Prognosis: good; Unexpected outcomes: none.' },
    }));
    golden('ungradable-left-eye.txt', out.note.text);
  });
});
