/** The plan is shown first after the per-eye summary: in the note (text and HTML) and on the SMART app page. */
import { describe, expect, it } from 'vitest';
import { draftSections } from '../../launch/app-page.js';
import { appPage } from '../../launch/pages.js';
import { DIABETIC, diabeticAnswers } from '../findings/exam-fixtures.js';
import { buildFor } from './report-fixtures.js';

const inOrder = (text: string, marks: string[]) => marks.map((m) => {
  const i = text.indexOf(m);
  expect(i, `missing ${m}`).toBeGreaterThanOrEqual(0);
  return i;
});

describe('plan placement', () => {
  const out = buildFor(DIABETIC, diabeticAnswers);
  it('note: Plan right after the per-eye summary, before the referral urgency and the model text', () => {
    const at = inOrder(out.note.text, ['DIABETIC RETINOPATHY (ICDR', 'SCREENING FOR 12', 'PLAN (RULE-DERIVED', 'SUGGESTED REFERRAL URGENCY', "VOLMO'S OWN ASSESSMENT AND PLAN (MODEL-GENERATED, UNVERIFIED"]);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    const titles = out.note.document.sections.map((s) => s.title);
    expect(titles.indexOf('Plan (rule-derived proposals from the AI findings)')).toBe(titles.findIndex((t) => t.startsWith('Screening')) + 1);
    expect(out.note.html).toContain('<h3>Plan (rule-derived proposals from the AI findings)</h3>');
  });

  it('SMART app page: per-eye summary, then the plan, then VOLMO\'s own plan, then the full note', () => {
    const html = appPage({ needPatientBanner: false, patient: { name: 'A' }, drafts: [{ id: 'd1', noteText: out.note.text, random: false, model: 'VOLMO-2B', ...draftSections(out.note.document) }] });
    const at = inOrder(html, ['<div class="summary" data-section="summary"><h3>Diabetic retinopathy', 'data-section="plan"', 'Proposed referral: URGENT', 'data-section="model-plan"', 'Full draft note', '<pre>']);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(html).toContain('[rule dr-icdr3-me]');
    expect(html).toContain("DISAGREEMENT with VOLMO&#39;s own plan");
  });
});
