/**
 * Hand-written exam contexts and recorded-style model answers used by findings and reports tests.
 * Answers are what a VOLMO-like model could return; probabilities are per candidate answer token.
 */
import type { TaskPlan } from '../../src/findings/plan.js';
import type { ExamContext, ImageRecord, ModelAnswer, ModelIdentity } from '../../src/findings/types.js';

export function image(id: string, eye: ImageRecord['eye'], modality: ImageRecord['modality'] = 'OP', gradable = true, reason?: string): ImageRecord {
  return {
    id, eye, modality, source: `Media/${id}`, contentHash: `sha256:${id.padEnd(8, '0')}`,
    gradability: gradable ? { gradable: true } : { gradable: false, reason },
  };
}

export function context(images: ImageRecord[], extra: Partial<ExamContext> = {}): ExamContext {
  return {
    patient: 'Patient/p-diabetic-1',
    encounter: 'Encounter/e-1',
    effectiveDateTime: '2026-11-20T10:15:00Z',
    imagingStudies: ['ImagingStudy/fundus-1'],
    images,
    notes: ['DocumentReference/note-1'],
    profile: {
      medicalHistory: 'Medical History: 1. Type 2 diabetes mellitus for 12 years; HbA1c 8.9%; hypertension',
      symptoms: '1. Symptom: Blurred vision; Duration: 3 months; Progression: gradual',
    },
    ...extra,
  };
}

export const DIABETIC = context([image('r1', 'right'), image('l1', 'left')]);
export const UNGRADABLE = context(
  [image('r1', 'right'), image('l1', 'left', 'OP', false, 'out of focus; media opacity')],
  { patient: 'Patient/p-ungradable-1' },
);

export const MODEL: ModelIdentity = {
  name: 'VOLMO-2B', version: '2026.03-stage3', manifestSha256: 'a'.repeat(64), executionProvider: 'cpu', random: false,
};
export const RANDOM_MODEL: ModelIdentity = { ...MODEL, name: 'tiny-random-volmo', version: '0.0.1-test', random: true };

export const TRUE_ANSWER = (p: number): ModelAnswer => ({ text: 'TRUE.', candidates: { TRUE: p, FALSE: 1 - p } });
export const FALSE_ANSWER = (p: number): ModelAnswer => ({ text: 'FALSE.', candidates: { '▁TRUE': 1 - p, '▁FALSE': p } });

/** Grade answer whose probability mass `p` sits on `grade`, the rest spread over the others. */
export function gradeAnswer(grade: number, p: number, text = String(grade)): ModelAnswer {
  const rest = (1 - p) / 4;
  return { text, candidates: Object.fromEntries([0, 1, 2, 3, 4].map((g) => [String(g), g === grade ? p : rest])) };
}

/** Default answers for every planned task (all negative, grade 0), with per-key overrides. */
export function answersFor(plan: TaskPlan, overrides: Record<string, ModelAnswer> = {}): Record<string, ModelAnswer> {
  const out: Record<string, ModelAnswer> = {};
  for (const t of plan.tasks) {
    if (t.task.kind === 'screening') out[t.key] = FALSE_ANSWER(0.93);
    else if (t.task.kind === 'dr-stage') out[t.key] = gradeAnswer(0, 0.9);
    else if (t.task.kind === 'mh-stage') out[t.key] = { text: '3', candidates: { '2': 0.1, '3': 0.8, '4': 0.1 } };
    else if (t.task.kind === 'describe') out[t.key] = { text: `A colour fundus photograph of the ${t.eye} eye.` };
    else out[t.key] = { text: `Step ${t.step ?? 0} answer.` };
  }
  return { ...out, ...overrides };
}

/** Answers of the diabetic case: DR in both eyes, ICDR 2 right and 3 left, macular edema left. */
export function diabeticAnswers(plan: TaskPlan): Record<string, ModelAnswer> {
  return answersFor(plan, {
    'screening:diabetic-retinopathy:r1': TRUE_ANSWER(0.91),
    'screening:diabetic-retinopathy:l1': TRUE_ANSWER(0.96),
    'screening:retinal-hemorrhage:l1': TRUE_ANSWER(0.81),
    'screening:macular-edema:l1': TRUE_ANSWER(0.77),
    'dr-stage:r1': gradeAnswer(2, 0.72),
    'dr-stage:l1': gradeAnswer(3, 0.64, '3'),
    'describe:r1': { text: 'Colour fundus photograph of the right eye with scattered dot-blot haemorrhages and hard exudates.' },
    'describe:l1': { text: 'Colour fundus photograph of the left eye with intraretinal haemorrhages in four quadrants and venous beading.' },
    'assess-plan:1': { text: '[DIFFERENTIAL DIAGNOSIS]\n1. Diagnosis: Diabetic retinopathy; Severity: Severe non-proliferative\n2. Diagnosis: Hypertensive retinopathy; Severity: Mild' },
    'assess-plan:2': { text: 'Diagnosis: Diabetic retinopathy; Severity: Severe non-proliferative; Justification: haemorrhages in four quadrants and venous beading.' },
    'assess-plan:3': { text: '1. Assessment: Severe NPDR left eye, moderate NPDR right eye; Plan: Refer to retina specialist, optimise glycaemic control.' },
    'assess-plan:4': { text: '1. Treatment: Panretinal photocoagulation if progression; Immediate outcome: reduced risk of PDR; Long-term outcome: stable vision; Justification: high risk of progression.' },
    'assess-plan:5': { text: '1. Follow-up care: Retina review in 2-4 months; Justification: severe NPDR; Prognosis: fair; Unexpected outcomes: none.' },
  });
}
