/**
 * Per-eye result Observations (status preliminary) for the draft report. Codes from codes.ts only;
 * text-only CodeableConcepts where no code is listed. Every one carries AIAST and, where the
 * runtime gave probabilities, AIconfidence.
 */
import type { CodeableConcept, Observation, Reference } from 'fhir/r4.js';
import type { FindingsConfig } from '../findings/config.js';
import type { ConditionFinding, EyeFindings, ExamFindings, StageFinding } from '../findings/findings-types.js';
import { findingKey } from '../findings/management/derive.js';
import { CONDITIONS } from '../findings/tasks.js';
import type { ExamContext, ExamEye, ModelIdentity } from '../findings/types.js';
import { aiMeta, confidenceExtension } from './ai-transparency.js';
import {
  AUTONOMOUS_DR_SCREENING, AUTONOMOUS_NEGATIVE, AUTONOMOUS_POSITIVE, BODY_SITE, CONDITION_CODES, DATA_ABSENT,
  DR_SEVERITY_BY_EYE, ICDR_ANSWERS, OBSERVATION_IMAGING,
} from './codes.js';

export interface ObservationInput {
  context: ExamContext;
  findings: ExamFindings;
  model: ModelIdentity;
  device: Reference;
  config: FindingsConfig;
}

const EYE_TEXT: Record<ExamEye, string> = { right: 'right eye', left: 'left eye', unknown: 'eye of unknown laterality' };
const FHIR_REF = /^(Media|DocumentReference|ImagingStudy)\/[A-Za-z0-9\-.]{1,64}$/;

function base(input: ObservationInput, eye: ExamEye | undefined, imageIds: string[]): Observation {
  const { context } = input;
  const sources = context.images.filter((i) => imageIds.includes(i.id) && FHIR_REF.test(i.source)).map((i) => i.source);
  const derived = [...new Set([...context.imagingStudies, ...sources])].map((reference) => ({ reference }));
  return {
    resourceType: 'Observation',
    meta: aiMeta(input.model),
    status: 'preliminary',
    category: [{ coding: [{ ...OBSERVATION_IMAGING }] }],
    code: { text: '' },
    subject: { reference: context.patient },
    ...(context.encounter ? { encounter: { reference: context.encounter } } : {}),
    effectiveDateTime: context.effectiveDateTime,
    ...(eye && eye !== 'unknown' ? { bodySite: { coding: [{ ...BODY_SITE[eye] }], text: EYE_TEXT[eye] } } : {}),
    device: input.device,
    ...(derived.length > 0 ? { derivedFrom: derived } : {}),
  };
}

function absent(code: 'error' | 'not-performed', text: string): CodeableConcept {
  return { coding: [{ system: DATA_ABSENT, code, display: code === 'error' ? 'Error' : 'Not Performed' }], text };
}

function notesFor(inconsistent: boolean, input: ObservationInput, eye: ExamEye): Observation['note'] {
  if (!inconsistent) return undefined;
  const msgs = input.findings.flags.filter((f) => f.eye === eye && f.code !== 'ungradable-image' && f.code !== 'unparseable-answer');
  return [{ text: `INCONSISTENT (not resolved): ${msgs.map((m) => m.message).join('; ')}` }];
}

function drSeverity(input: ObservationInput, e: EyeFindings): Observation | undefined {
  const st: StageFinding = e.drStage;
  if (st.status === 'not-assessed') return undefined;
  const obs = base(input, e.eye, st.imageIds.length > 0 ? st.imageIds : e.images.map((i) => i.id));
  obs.code = e.eye === 'unknown'
    ? { text: 'Diabetic retinopathy severity level (ICDR), eye of unknown laterality, by AI' }
    : { coding: [{ ...DR_SEVERITY_BY_EYE[e.eye] }], text: `${EYE_TEXT[e.eye]} diabetic retinopathy severity (ICDR), by AI` };
  if (st.status === 'graded' && st.grade !== undefined) {
    const a = ICDR_ANSWERS[st.grade]!;
    obs.valueCodeableConcept = { coding: [{ ...a.loinc }, ...(a.snomed ? [{ ...a.snomed }] : [])], text: `ICDR ${st.grade}: ${a.label}` };
    if (st.confidence !== undefined) obs.extension = [confidenceExtension(st.confidence)];
    const comps: NonNullable<Observation['component']> = [];
    if (st.pReferable !== undefined) {
      comps.push({ code: { text: 'Probability of ICDR grade 2 or higher (referable DR), from answer-token probabilities' }, valueQuantity: { value: Math.round(st.pReferable * 10_000) / 10_000, unit: 'probability' } });
    }
    if (st.referable) comps.push({ code: { text: 'Referable DR after thresholds' }, valueCodeableConcept: { text: st.referable } });
    if (comps.length > 0) obs.component = comps;
  } else if (st.status === 'unparseable') {
    obs.dataAbsentReason = absent('error', 'Model answer could not be parsed; grade manually');
  } else {
    const reasons = e.images.filter((i) => i.modality === 'OP' && !i.gradable).map((i) => i.reason ?? 'no reason given');
    obs.dataAbsentReason = absent('not-performed', `Ungradable fundus image(s): ${reasons.join('; ')}`);
  }
  obs.note = notesFor(st.inconsistent, input, e.eye);
  return obs;
}

function screening(input: ObservationInput, e: EyeFindings, f: ConditionFinding): Observation | undefined {
  if (f.status === 'not-assessed' || f.status === 'ungradable') return undefined;
  const def = CONDITIONS.find((c) => c.id === f.condition)!;
  const code = CONDITION_CODES[f.condition];
  const obs = base(input, e.eye, f.imageIds);
  obs.code = { ...(code ? { coding: [{ ...code }] } : {}), text: `${def.label}, ${EYE_TEXT[e.eye]} (AI screening)` };
  if (f.status === 'positive' || f.status === 'negative') obs.valueBoolean = f.status === 'positive';
  else if (f.status === 'indeterminate') obs.valueCodeableConcept = { text: 'Indeterminate (probability within the indeterminate band or contradicting the answer)' };
  else obs.dataAbsentReason = absent('error', 'Model answer could not be parsed');
  if (f.confidence !== undefined) obs.extension = [confidenceExtension(f.confidence)];
  obs.note = notesFor(f.inconsistent, input, e.eye);
  return obs;
}

function macularHole(input: ObservationInput, e: EyeFindings): Observation | undefined {
  const st = e.macularHole;
  if (st.status === 'not-assessed') return undefined;
  const obs = base(input, e.eye, st.imageIds);
  obs.code = { text: `Macular hole stage, ${EYE_TEXT[e.eye]} (AI, OCT)` };
  if (st.status === 'graded') {
    obs.valueInteger = st.grade;
    if (st.confidence !== undefined) obs.extension = [confidenceExtension(st.confidence)];
    obs.note = [{ text: 'Stage assigned assuming a macular hole is present; the model was trained on stages 2-4 only and does not detect absence of a hole.' }];
  } else {
    obs.dataAbsentReason = st.status === 'unparseable'
      ? absent('error', 'Model answer could not be parsed or was outside stages 2-4')
      : absent('not-performed', 'Ungradable OCT image(s)');
  }
  return obs;
}

/** LOINC 105914-6 where it applies (rule in docs/clinical-logic.md). Patient level, no body site. */
export function autonomousScreening(input: ObservationInput): Observation | undefined {
  if (!input.config.emitAutonomousScreeningCode) return undefined;
  const eyes = input.findings.eyes.filter((e) => e.drStage.status !== 'not-assessed');
  if (eyes.length === 0) return undefined;
  const positive = eyes.some((e) => e.drStage.status === 'graded' && e.drStage.referable === 'positive');
  const negative = !positive && eyes.every((e) => e.drStage.status === 'graded' && e.drStage.referable === 'negative'
    && e.screening.find((s) => s.condition === 'macular-edema')?.status === 'negative');
  if (!positive && !negative) return undefined;
  const imageIds = eyes.flatMap((e) => e.drStage.imageIds);
  const obs = base(input, undefined, imageIds);
  obs.code = { coding: [{ ...AUTONOMOUS_DR_SCREENING }], text: 'Diabetic retinopathy screening by AI' };
  obs.valueCodeableConcept = { coding: [{ ...(positive ? AUTONOMOUS_POSITIVE : AUTONOMOUS_NEGATIVE) }] };
  return obs;
}

function gradability(input: ObservationInput): Observation[] {
  return input.context.images.filter((i) => !i.gradability.gradable).map((i) => {
    const obs = base(input, i.eye, [i.id]);
    obs.code = { text: `Image gradability (${i.modality === 'OP' ? 'fundus photograph' : 'OCT'}), ${EYE_TEXT[i.eye]}` };
    obs.valueCodeableConcept = { text: 'Ungradable' };
    obs.note = [{ text: `Image ${i.id}: ${i.gradability.reason ?? 'no reason given'}` }];
    return obs;
  });
}

/** An Observation with the key of the finding it reports (findingKey in src/findings/management/derive.ts). */
export interface KeyedObservation {
  key: string;
  observation: Observation;
}

/** All result Observations, in report order: per eye DR severity, screening, macular hole; then 105914-6; then gradability. */
export function buildKeyedObservations(input: ObservationInput): KeyedObservation[] {
  const out: KeyedObservation[] = [];
  const push = (key: string, o: Observation | undefined) => {
    if (o) out.push({ key, observation: o });
  };
  for (const e of input.findings.eyes) {
    push(findingKey.dr(e.eye), drSeverity(input, e));
    for (const f of e.screening) push(findingKey.screening(e.eye, f.condition), screening(input, e, f));
    push(findingKey.macularHole(e.eye), macularHole(input, e));
  }
  push('autonomous-dr-screening', autonomousScreening(input));
  for (const g of gradability(input)) push('gradability', g);
  return out;
}
