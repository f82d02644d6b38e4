/**
 * Renders the patient context as a VOLMO case profile (volmo-model.md §1.3): the section headers the
 * model saw in training, with "Not documented" rather than guesses where data is missing.
 */
import { quoteForPrompt, stripPromptControls } from '../model/prompt-safety.js';
import type { ClinicalNote, EvidenceImage, EvidenceImages, PatientContext, VisualAcuity } from './types.js';

/** Characters of one note's text in the case profile (notes are already cut at gathering; this bounds the prompt). */
export const NOTE_PROMPT_MAX_CHARS = 2000;

export const CASE_SECTIONS = ['[PATIENT CLINICAL PROFILE]', '[MEDICAL HISTORY]', '[SYMPTOMS]', '[EXAMINATION FINDINGS]', '[DIAGNOSTIC IMAGING]'] as const;

const day = (s?: string) => (s ? s.slice(0, 10) : undefined);
const when = (s?: string) => (day(s) ? ` (${day(s)})` : '');

/** Free text must not be able to open a section of its own. */
export function neutraliseHeaders(text: string): string {
  return text.replace(/\[([A-Z][A-Z /&-]{2,40})\]/g, '($1)');
}

function profile(p: PatientContext): string {
  const sex = p.sex === 'male' || p.sex === 'female' ? p.sex : undefined;
  if (p.ageYears === undefined && !sex) return 'Age and sex not documented.';
  if (p.ageYears === undefined) return `${sex === 'male' ? 'Male' : 'Female'}, age not documented.`;
  return `${p.ageYears}-year-old ${sex ?? 'patient (sex not documented)'}.`;
}

function history(p: PatientContext): string {
  const lines: string[] = [];
  for (const c of p.conditions) {
    const eye = c.eye && c.eye !== 'unknown' && !/\b(eyes?|OU|OD|OS)\b/i.test(c.coding.display) ? `, ${c.eye === 'both' ? 'both eyes' : `${c.eye} eye`}` : '';
    lines.push(`- ${c.coding.display}${eye}${c.onset ? ` (since ${day(c.onset)})` : ''}`);
  }
  if (p.conditions.length === 0) lines.push('- No diabetes, hypertension or glaucoma on the problem list.');
  lines.push(p.hba1c ? `- HbA1c ${p.hba1c.percent}% (${p.hba1c.mmolPerMol} mmol/mol)${when(p.hba1c.effective)}` : '- HbA1c: not documented');
  lines.push(
    p.bloodPressure
      ? `- Blood pressure ${Math.round(p.bloodPressure.systolicMmHg)}/${Math.round(p.bloodPressure.diastolicMmHg)} mmHg${when(p.bloodPressure.effective)}`
      : '- Blood pressure: not documented',
  );
  if (p.medications.length === 0) lines.push('- Current eye medications: none recorded');
  else {
    lines.push('- Current eye medications:');
    for (const m of p.medications) lines.push(`  - ${m.coding.display}${m.dosage ? ` (${neutraliseHeaders(stripPromptControls(m.dosage).replace(/\s+/g, ' ').slice(0, 200))})` : ''}`);
  }
  return lines.join('\n');
}

function symptoms(notes: readonly ClinicalNote[]): string {
  if (notes.length === 0) return 'Not documented.';
  const parts = notes.map((n) => {
    const head = [day(n.date), n.type].filter(Boolean).join(', ');
    // Record text is data: quoted line by line, bounded, with control sequences and chat/image tokens removed.
    return `Quoted from clinical note${head ? ` (${stripPromptControls(head)})` : ''}:\n${quoteForPrompt(neutraliseHeaders(n.text), NOTE_PROMPT_MAX_CHARS)}`;
  });
  return parts.join('\n\n');
}

function acuity(v: VisualAcuity | undefined): string {
  if (!v) return 'not documented';
  const kind = v.corrected === true ? ', best corrected' : v.corrected === false ? ', uncorrected' : '';
  if (v.text) return `${v.text}${kind}${when(v.effective)}`;
  const parts = [v.snellen, v.logMar !== undefined ? `logMAR ${v.logMar.toFixed(2)}` : undefined].filter(Boolean);
  return `${parts[0]}${parts[1] ? ` (${parts[1]})` : ''}${kind}${when(v.effective)}`;
}

function exam(p: PatientContext): string {
  const iop = (e: 'right' | 'left') => (p.iop[e] ? `${p.iop[e]!.mmHg} mmHg${when(p.iop[e]!.effective)}` : 'not documented');
  return [
    `- Visual acuity: right eye ${acuity(p.visualAcuity.right)}; left eye ${acuity(p.visualAcuity.left)}`,
    `- Intraocular pressure: right eye ${iop('right')}; left eye ${iop('left')}`,
  ].join('\n');
}

const MODALITY: Record<EvidenceImage['modality'], string> = { OP: 'colour fundus photograph', OPT: 'OCT image', other: 'image' };

function describeImages(list: readonly EvidenceImage[]): string {
  return list
    .map((im) => {
      const grade = im.gradability.status === 'ungradable' ? `ungradable: ${im.gradability.reasons.join(', ') || 'quality'}` : im.gradability.status === 'gradable' ? 'gradable' : undefined;
      return `${MODALITY[im.modality]}${day(im.acquired) ? ` ${day(im.acquired)}` : ''}${grade ? ` (${grade})` : ''}`;
    })
    .join('; ');
}

function imaging(images: EvidenceImages): string {
  const rows: string[] = [];
  if (images.right.length) rows.push(`- Right eye: ${describeImages(images.right)}`);
  if (images.left.length) rows.push(`- Left eye: ${describeImages(images.left)}`);
  if (images.unknown.length) rows.push(`- Eye not recorded: ${describeImages(images.unknown)}`);
  return rows.length ? rows.join('\n') : 'No retinal images available.';
}

export function renderCaseText(patient: PatientContext, images: EvidenceImages): string {
  const body = [profile(patient), history(patient), symptoms(patient.notes), exam(patient), imaging(images)];
  return CASE_SECTIONS.map((h, i) => `${h}\n${body[i]}`).join('\n\n');
}
