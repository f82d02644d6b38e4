/**
 * The draft note: a small document model built from findings, rendered to plain text (Epic
 * preliminary clinical note) and to HTML (DiagnosticReport.presentedForm). Model free text is
 * sanitised (control characters removed, length capped) and HTML-escaped.
 */
import type { ConditionFinding, EyeFindings, ExamFindings, StageFinding } from '../findings/findings-types.js';
import { PLAN_SOURCES } from '../findings/management/rules.js';
import type { ManagementPlan } from '../findings/management/types.js';
import type { SkippedTask } from '../findings/plan.js';
import { CONDITIONS } from '../findings/tasks.js';
import type { ModelIdentity } from '../findings/types.js';
import { followUpText, referralText } from '../findings/management/format.js';
import { ICDR_ANSWERS, RANDOM_WEIGHTS_BANNER } from './codes.js';

export interface NoteSection {
  title: string;
  lines: string[];
}

export interface NoteDocument {
  banner?: string;
  header: string[];
  sections: NoteSection[];
  footer: string[];
}

export interface NoteInput {
  findings: ExamFindings;
  model: ModelIdentity;
  /** When the draft was generated (ISO instant). */
  generatedAt: string;
  effectiveDateTime: string;
  assessPlanHistory: 'chained' | 'independent';
  /** VOLMO's own assessment and plan as a second stage (absent: not requested). */
  assessPlanStage?: { status: 'pending' } | { status: 'done'; completedAt: string } | { status: 'failed'; message: string };
}

export const DRAFT_HEADLINE = 'AI-GENERATED DRAFT - PENDING CLINICIAN REVIEW';
const MAX_MODEL_TEXT = 4000;
const EYE_TITLE = { right: 'Right eye', left: 'Left eye', unknown: 'Eye of unknown laterality' } as const;
const p = (x: number) => x.toFixed(2);

/** Removes control characters (keeps newlines and tabs) and caps the length of model text. */
export function sanitiseModelText(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000B-\u001F\u007F\u200B-\u200F\u2028\u2029\u202A-\u202E]/gu, '').trim();
  if (clean.length === 0) return '(no text returned)';
  return clean.length > MAX_MODEL_TEXT ? `${clean.slice(0, MAX_MODEL_TEXT)} [truncated]` : clean;
}

function stageLine(st: StageFinding): string {
  if (st.status === 'graded' && st.grade !== undefined) {
    const extras = [st.confidence !== undefined ? `P=${p(st.confidence)}` : undefined,
      st.pReferable !== undefined ? `P(grade>=2)=${p(st.pReferable)}` : undefined,
      st.referable ? `referable: ${st.referable}` : undefined].filter(Boolean).join('; ');
    return `ICDR ${st.grade} - ${ICDR_ANSWERS[st.grade]!.label}${extras ? ` (${extras})` : ''}${st.inconsistent ? ' [INCONSISTENT]' : ''}`;
  }
  if (st.status === 'unparseable') return 'model answer could not be interpreted - grade manually';
  if (st.status === 'ungradable') return 'image not gradable - no grade';
  return 'not assessed';
}

function macularHoleLine(st: StageFinding): string {
  if (st.status === 'graded') return `stage ${st.grade}${st.confidence !== undefined ? ` (P=${p(st.confidence)})` : ''}`;
  return st.status === 'unparseable' ? 'model answer could not be interpreted (or outside stages 2-4)' : 'image not gradable - no stage';
}

function conditionName(f: ConditionFinding): string {
  const label = CONDITIONS.find((c) => c.id === f.condition)!.label;
  const conf = f.confidence !== undefined && f.status !== 'negative' ? ` (P=${p(f.confidence)})` : '';
  return `${label}${conf}${f.inconsistent ? ' [INCONSISTENT]' : ''}`;
}

function screeningLines(e: EyeFindings): string[] {
  const by = (s: ConditionFinding['status']) => e.screening.filter((f) => f.status === s);
  if (e.screening.every((f) => f.status === 'not-assessed')) return [`${EYE_TITLE[e.eye]}: not assessed`];
  if (e.screening.every((f) => f.status === 'ungradable')) return [`${EYE_TITLE[e.eye]}: images not gradable - not screened`];
  const out = [`${EYE_TITLE[e.eye]}:`];
  const groups = [['positive', 'Positive'], ['indeterminate', 'Indeterminate'], ['unparseable', 'Unparseable answer'], ['negative', 'Negative']] as const;
  for (const [status, title] of groups) {
    const list = by(status);
    if (list.length > 0) out.push(`  ${title}: ${list.map(conditionName).join(', ')}`);
  }
  return out;
}

function imageLines(e: EyeFindings): string {
  const fundus = e.images.filter((i) => i.modality === 'OP');
  const oct = e.images.filter((i) => i.modality === 'OPT');
  const part = (list: typeof fundus, what: string) => {
    const bad = list.filter((i) => !i.gradable);
    const reasons = bad.map((i) => `${i.id}: ${i.reason ?? 'no reason given'}`).join('; ');
    return `${list.length} ${what} (${list.length - bad.length} gradable${bad.length > 0 ? `; ungradable ${reasons}` : ''})`;
  };
  const parts = [fundus.length > 0 ? part(fundus, 'fundus photograph(s)') : '', oct.length > 0 ? part(oct, 'OCT image(s)') : ''].filter(Boolean);
  return `${EYE_TITLE[e.eye]}: ${parts.length > 0 ? parts.join(', ') : 'no image'}`;
}

const SKIP_TEXT: Record<SkippedTask['reason'], string> = {
  disabled: 'disabled by configuration', 'no-fundus-image': 'no fundus photograph', 'no-oct-image': 'no OCT image',
  ungradable: 'image ungradable', 'no-gradable-image': 'no gradable image',
};
const KIND_TEXT: Record<SkippedTask['kind'], string> = {
  screening: 'Screening', 'dr-stage': 'DR staging', 'mh-stage': 'Macular-hole staging', describe: 'Image description', 'assess-plan': 'Assessment and plan',
};

export function buildNoteDocument(input: NoteInput): NoteDocument {
  const { findings: f, model } = input;
  const banner = model.random ? RANDOM_WEIGHTS_BANNER : undefined;
  const header = [
    DRAFT_HEADLINE,
    'Produced by an AI model; not reviewed or signed by a clinician. Verify every finding against the images.',
    `Model: ${model.name} version ${model.version} (manifest sha256 ${model.manifestSha256.slice(0, 12)}, execution provider ${model.executionProvider})`,
    `Date: ${input.generatedAt.slice(0, 10)} (generated ${input.generatedAt}); images taken ${input.effectiveDateTime}`,
    `Task set: ${f.taskSetVersion}`,
  ];
  const sections: NoteSection[] = [{ title: 'Images', lines: f.eyes.map(imageLines) }];
  sections.push({ title: 'Diabetic retinopathy (ICDR severity scale)', lines: f.eyes.map((e) => `${EYE_TITLE[e.eye]}: ${stageLine(e.drStage)}`) });
  sections.push({ title: 'Screening for 12 conditions (per gradable fundus photograph)', lines: f.eyes.flatMap(screeningLines) });
  const mh = f.eyes.filter((e) => e.macularHole.status !== 'not-assessed');
  if (mh.length > 0) {
    sections.push({ title: 'Macular hole stage (OCT; assumes a hole is present)', lines: mh.map((e) => `${EYE_TITLE[e.eye]}: ${macularHoleLine(e.macularHole)}`) });
  }
  sections.push(planSection(f.managementPlan));
  sections.push({
    title: 'Suggested referral urgency',
    lines: [
      `Urgency: ${f.referral.urgency.toUpperCase()} (rule: ICDR levels, Wilkinson et al. 2003; see docs/clinical-logic.md)`,
      ...f.referral.reasons.map((r) => `- ${r}`),
    ],
  });
  sections.push({ title: 'Consistency and quality flags', lines: f.flags.length > 0 ? f.flags.map((x) => `- [${x.code}] ${x.eye === 'case' ? '' : `${EYE_TITLE[x.eye]}: `}${x.message}`) : ['none'] });
  if (f.descriptions.length > 0) {
    sections.push({ title: 'Image descriptions (model text, unverified)', lines: f.descriptions.flatMap((d) => [`${EYE_TITLE[d.eye]}, image ${d.imageId}:`, ...indent(sanitiseModelText(d.text))]) });
  }
  if (f.assessPlan.length > 0) {
    sections.push({
      title: `VOLMO's own assessment and plan (model-generated, unverified; ${input.assessPlanHistory} steps)`,
      lines: f.assessPlan.flatMap((s) => [`${s.step}. ${s.title}:`, ...indent(sanitiseModelText(s.text))]),
    });
  } else if (input.assessPlanStage?.status === 'pending') {
    sections.push({ title: "VOLMO's own assessment and plan", lines: ['Running after the screening result (second stage); this draft is updated when it finishes.'] });
  } else if (input.assessPlanStage?.status === 'failed') {
    sections.push({ title: "VOLMO's own assessment and plan", lines: [`Not available: ${input.assessPlanStage.message}`] });
  }
  const secondStage = input.assessPlanStage !== undefined;
  const skipped = f.skipped.filter((s) => s.reason !== 'ungradable' && !(secondStage && s.kind === 'assess-plan'));
  if (skipped.length > 0) sections.push({ title: 'Not assessed', lines: skipped.map((s) => `- ${KIND_TEXT[s.kind]}: ${SKIP_TEXT[s.reason]}`) });
  const footer = ['End of AI-generated draft. It becomes part of the record only after clinician review and signature.'];
  return { banner, header, sections, footer };
}

const SCOPE_TITLE = { ...EYE_TITLE, patient: 'Patient' } as const;

/** The rule-derived plan: consolidated proposals first, then each rule's line, then disagreements with VOLMO. */
function planSection(plan: ManagementPlan): NoteSection {
  const lines: string[] = [];
  if (plan.lines.length === 0) lines.push('No plan: nothing was assessed. Examine the patient or repeat the imaging.');
  for (const r of plan.referrals) {
    lines.push(`Proposed referral: ${r.priority.toUpperCase()} - ${referralSummary(r.to, r.withinDays, r.tests)} [rules ${r.ruleIds.join(', ')}]`);
  }
  for (const f of plan.followUps) lines.push(`Proposed follow-up: ${followUpText(f)} [rules ${f.ruleIds.join(', ')}]`);
  for (const scope of ['right', 'left', 'unknown', 'patient'] as const) {
    const own = plan.lines.filter((l) => l.scope === scope);
    if (own.length === 0) continue;
    lines.push(`${SCOPE_TITLE[scope]}:`);
    for (const l of own) lines.push(`  - ${l.text}${l.basis.length ? ` (${l.basis.join('; ')})` : ''} [rule ${l.ruleId}]`);
  }
  if (plan.disagreements.length > 0) {
    lines.push("DISAGREEMENT with VOLMO's own plan (review both):");
    lines.push(...plan.disagreements.map((d) => `  - [${d.code}] ${d.message}`));
  }
  const sources = [...new Set(plan.lines.map((l) => l.source))];
  lines.push(`Rule-derived from the AI findings above (${plan.rulesVersion}); proposals, not orders. Sources:`);
  lines.push(...sources.map((s) => `  - ${PLAN_SOURCES[s] ?? s}`));
  return { title: 'Plan (rule-derived proposals from the AI findings)', lines };
}

function referralSummary(to: Parameters<typeof referralText>[0]['to'], withinDays: number, tests: string[]): string {
  return referralText({ to, withinDays, priority: 'routine', tests });
}

function indent(text: string): string[] {
  return text.split('\n').map((l) => `   ${l}`);
}

/** Plain text for an EHR note (LF line endings, banner first and last for test models). */
export function renderNoteText(doc: NoteDocument): string {
  const out: string[] = [];
  if (doc.banner) out.push(`*** ${doc.banner} ***`);
  out.push(...doc.header, '');
  for (const s of doc.sections) out.push(s.title.toUpperCase(), ...s.lines.map((l) => `  ${l}`), '');
  out.push(...doc.footer);
  if (doc.banner) out.push(`*** ${doc.banner} ***`);
  return `${out.join('\n')}\n`;
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Self-contained HTML fragment (no scripts, no styles beyond inline white-space). */
export function renderNoteHtml(doc: NoteDocument): string {
  const banner = doc.banner ? `<p><strong>${escapeHtml(doc.banner)}</strong></p>` : '';
  const header = `<p><strong>${escapeHtml(doc.header[0] ?? '')}</strong><br/>${doc.header.slice(1).map(escapeHtml).join('<br/>')}</p>`;
  const sections = doc.sections
    .map((s) => `<h3>${escapeHtml(s.title)}</h3><div style="white-space:pre-wrap">${s.lines.map(escapeHtml).join('<br/>')}</div>`)
    .join('');
  return `<div>${banner}${header}${sections}<p>${doc.footer.map(escapeHtml).join('<br/>')}</p>${banner}</div>`;
}
