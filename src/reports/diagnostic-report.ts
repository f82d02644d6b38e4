/**
 * The draft DiagnosticReport (status preliminary): category imaging + ophthalmology (text; no
 * ophthalmology category code is listed in standards.md), result Observations, conclusion,
 * conclusionCode, presentedForm as text/plain and text/html (base64, UTF-8).
 */
import type { CodeableConcept, Coding, DiagnosticReport, Reference } from 'fhir/r4.js';
import type { ExamFindings } from '../findings/findings-types.js';
import { CONDITIONS } from '../findings/tasks.js';
import type { ExamContext, ModelIdentity } from '../findings/types.js';
import { aiMeta } from './ai-transparency.js';
import { CONDITION_CODES, DIAGNOSTIC_IMAGING, FUNDUS_PHOTOGRAPHY, ICDR_ANSWERS, OCT_RETINA, RANDOM_WEIGHTS_BANNER } from './codes.js';

export interface DiagnosticReportInput {
  context: ExamContext;
  findings: ExamFindings;
  model: ModelIdentity;
  results: Reference[];
  noteText: string;
  noteHtml: string;
  /** ISO instant the draft was generated. */
  issued: string;
}

const EYE = { right: 'right eye', left: 'left eye', unknown: 'eye of unknown laterality' } as const;

/** One-paragraph conclusion; starts with the random-weights banner for test models. */
export function buildConclusion(findings: ExamFindings, model: ModelIdentity): string {
  const parts: string[] = [];
  if (model.random) parts.push(`${RANDOM_WEIGHTS_BANNER}.`);
  parts.push(`AI-generated draft pending clinician review (${model.name} ${model.version}).`);
  const dr = findings.eyes.filter((e) => e.drStage.status !== 'not-assessed').map((e) => {
    const st = e.drStage;
    if (st.status === 'graded') return `${EYE[e.eye]} ICDR ${st.grade} (${ICDR_ANSWERS[st.grade!]!.label.toLowerCase()})${st.inconsistent ? ' [inconsistent]' : ''}`;
    return `${EYE[e.eye]} ${st.status}`;
  });
  if (dr.length > 0) parts.push(`Diabetic retinopathy: ${dr.join('; ')}.`);
  const pos = findings.eyes.flatMap((e) => e.screening.filter((f) => f.status === 'positive')
    .map((f) => `${CONDITIONS.find((c) => c.id === f.condition)!.label.toLowerCase()} (${EYE[e.eye]})`));
  if (pos.length > 0) parts.push(`Screening positive: ${pos.join(', ')}.`);
  const mh = findings.eyes.filter((e) => e.macularHole.status === 'graded').map((e) => `${EYE[e.eye]} stage ${e.macularHole.grade}`);
  if (mh.length > 0) parts.push(`Macular hole (OCT): ${mh.join('; ')}.`);
  parts.push(`Referral urgency: ${findings.referral.urgency}.`);
  if (findings.flags.length > 0) parts.push(`${findings.flags.length} consistency/quality flag(s); see report.`);
  return parts.join(' ');
}

/** SNOMED CT codes for the conclusion: DR stage per worst eye, and positive findings that have a code. */
export function buildConclusionCodes(findings: ExamFindings): CodeableConcept[] {
  const codings: Coding[] = [];
  const seen = new Set<string>();
  const add = (c: Coding | undefined) => {
    if (c?.code && !seen.has(c.code)) {
      seen.add(c.code);
      codings.push({ ...c });
    }
  };
  const grades = findings.eyes.filter((e) => e.drStage.status === 'graded').map((e) => e.drStage.grade!);
  for (const g of [...new Set(grades)].sort((a, b) => b - a)) add(ICDR_ANSWERS[g]!.snomed);
  for (const e of findings.eyes) {
    for (const f of e.screening) {
      if (f.status !== 'positive') continue;
      if (f.condition === 'diabetic-retinopathy' && grades.some((g) => g > 0)) continue;
      add(CONDITION_CODES[f.condition]);
    }
  }
  return codings.map((c) => ({ coding: [c], text: c.display }));
}

function base64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

export function buildDiagnosticReport(input: DiagnosticReportInput): DiagnosticReport {
  const { context, findings, model } = input;
  const modalities = new Set(context.images.map((i) => i.modality));
  const codings = [...(modalities.has('OP') ? [FUNDUS_PHOTOGRAPHY] : []), ...(modalities.has('OPT') ? [OCT_RETINA] : [])];
  const title = `${model.random ? `${RANDOM_WEIGHTS_BANNER}: ` : ''}AI-assisted ophthalmic imaging review (draft)`;
  const conclusionCode = buildConclusionCodes(findings);
  return {
    resourceType: 'DiagnosticReport',
    meta: aiMeta(model),
    status: 'preliminary',
    category: [{ coding: [{ ...DIAGNOSTIC_IMAGING }] }, { text: 'Ophthalmology' }],
    code: { ...(codings.length > 0 ? { coding: codings.map((c) => ({ ...c })) } : {}), text: title },
    subject: { reference: context.patient },
    ...(context.encounter ? { encounter: { reference: context.encounter } } : {}),
    effectiveDateTime: context.effectiveDateTime,
    issued: input.issued,
    ...(input.results.length > 0 ? { result: input.results } : {}),
    ...(context.imagingStudies.length > 0 ? { imagingStudy: context.imagingStudies.map((reference) => ({ reference })) } : {}),
    conclusion: buildConclusion(findings, model),
    ...(conclusionCode.length > 0 ? { conclusionCode } : {}),
    presentedForm: [
      { contentType: 'text/plain; charset=utf-8', language: 'en', title, data: base64(input.noteText) },
      { contentType: 'text/html; charset=utf-8', language: 'en', title, data: base64(input.noteHtml) },
    ],
  };
}
