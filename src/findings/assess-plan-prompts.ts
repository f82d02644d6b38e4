/**
 * VOLMO's five-step assessment-and-plan prompts, verbatim from
 * volmo data/datajsons/assessplan/pmccasereports.json (steps 2–5 are identical for every case;
 * step 1 carries the clinical profile).
 */
import { stripPromptControls } from '../model/prompt-safety.js';
import type { ClinicalProfile } from './types.js';

/** Upper bound of the case profile in step 1 (VOLMO's case prompts were 964–3,532 characters). */
export const PROFILE_MAX_CHARS = 8000;

const RULE = '#'.repeat(50);

export type AssessPlanStepId =
  | 'differential-diagnosis' | 'most-likely-diagnosis' | 'assessment-and-plan' | 'treatments' | 'follow-up';

export interface AssessPlanStep {
  step: 1 | 2 | 3 | 4 | 5;
  id: AssessPlanStepId;
  title: string;
}

export const ASSESS_PLAN_STEPS: readonly AssessPlanStep[] = [
  { step: 1, id: 'differential-diagnosis', title: 'Provide Differential Diagnoses' },
  { step: 2, id: 'most-likely-diagnosis', title: 'Identify Most Likely Diagnosis' },
  { step: 3, id: 'assessment-and-plan', title: 'Provide Clinical Assessment and Plan' },
  { step: 4, id: 'treatments', title: 'Recommend Treatments' },
  { step: 5, id: 'follow-up', title: 'Outline Follow-Up Care' },
];

function section(name: string, value: string | undefined, absent: string): string {
  const v = value?.trim();
  return `[${name}]\n${v ? v : absent}`;
}

/** The profile block from sections, as in VOLMO's case reports ("[PATIENT CLINICAL PROFILE]\n\n[MEDICAL HISTORY]\n..."). */
export function renderProfileBlock(profile: ClinicalProfile): string {
  return [
    '[PATIENT CLINICAL PROFILE]\n',
    section('MEDICAL HISTORY', profile.medicalHistory, 'No medical history reported') + '\n',
    section('FAMILY HISTORY', profile.familyHistory, 'No family history reported') + '\n',
    section('SYMPTOMS', profile.symptoms, 'No symptoms reported') + '\n',
    section('EXAMINATION FINDINGS', profile.examinationFindings, 'No examination findings reported') + '\n',
    section('DIAGNOSTIC IMAGING', profile.diagnosticImaging, 'No diagnostic imaging reported'),
  ].join('\n');
}

/**
 * Step 1: the case profile framed exactly as in VOLMO's case-report prompts. `profile` is either
 * sections, or an already rendered block (e.g. the evidence layer's caseText), inserted verbatim.
 */
export function differentialDiagnosisPrompt(profile: ClinicalProfile | string): string {
  // Defence in depth: whatever built the profile, it cannot carry chat/image tokens or control sequences.
  const raw = stripPromptControls(typeof profile === 'string' ? profile.trim() : renderProfileBlock(profile));
  const block = raw.length > PROFILE_MAX_CHARS ? `${raw.slice(0, PROFILE_MAX_CHARS)}… [profile truncated]` : raw;
  return [
    `${RULE}\n### Task: Provide Differential Diagnoses ###\n`,
    'You are an ophthalmologist. You are given the clinical profile of a patient. Based on the clinical images and profile, please provide a differential diagnosis. For each potential diagnosis, include severity level.\n',
    `### Input: Clinical Profile ###\n${block}\n`,
    '### Expected Output Format ###\n[DIFFERENTIAL DIAGNOSIS]\n1. Diagnosis: [name]; Severity: [severity]\n2. Diagnosis: [name]; Severity: [severity]\n...',
    RULE,
  ].join('\n');
}

const FIXED: Record<2 | 3 | 4 | 5, string> = {
  2: `${RULE}\n### Task: Identify Most Likely Diagnosis ###\n\nThank you for the differential diagnosis. Based on these findings, what is the most likely diagnosis? Please provide justification for your choice, including severity assessment.\n\n### Expected Output Format ###\nDiagnosis: [name]; Severity: [severity]; Justification: [explanation]\n${RULE}`,
  3: `${RULE}\n### Task: Provide Clinical Assessment and Plan ###\n\nGiven your diagnosis, could you provide a detailed clinical assessment and treatment plan?\n\n### Expected Output Format ###\n1. Assessment: [clinical assessment]; Plan: [treatment plan]\n2. Assessment: [clinical assessment]; Plan: [treatment plan]\n...\n${RULE}`,
  4: `${RULE}\n### Task: Recommend Treatments ###\n\nBased on your assessment and plan, what specific treatments would you recommend? Please include immediate and long-term outcomes when available.\n\n### Expected Output Format ###\n1. Treatment: [treatment]; Immediate outcome: [outcome]; Long-term outcome: [outcome]; Justification: [justification]\n2. Treatment: [treatment]; Immediate outcome: [outcome]; Long-term outcome: [outcome]; Justification: [justification]\n...\n${RULE}`,
  5: `${RULE}\n### Task: Outline Follow-Up Care ###\n\nFinally, please outline the recommended follow-up care for this patient. Include justification, prognosis, and any unexpected outcomes where appropriate.\n\n### Expected Output Format ###\n1. Follow-up care: [care details]; Justification: [justification]; Prognosis: [prognosis]; Unexpected outcomes: [outcomes]\n2. Follow-up care: [care details]; Justification: [justification]; Prognosis: [prognosis]; Unexpected outcomes: [outcomes]\n...\n${RULE}`,
};

/** The text of step n (without any image prefix). */
export function assessPlanPrompt(step: 1 | 2 | 3 | 4 | 5, profile: ClinicalProfile | string): string {
  return step === 1 ? differentialDiagnosisPrompt(profile) : FIXED[step];
}
