/**
 * Analysis -> CDS cards. Pure. One card per analysed patient: the referral urgency decides the indicator,
 * the detail lists per-eye findings with confidence, what could not be assessed and why, and the model
 * that produced it. Output of a random-weight test model is labelled as such and never raises an alarm.
 */
import { randomUUID } from 'node:crypto';
import type { AnalysisResult } from '../analysis/analyse.js';
import type { EvidenceBundle, Problem } from '../evidence/types.js';
import type { EyeFindings, Urgency } from '../findings/findings-types.js';
import { CONDITIONS } from '../findings/tasks.js';
import { reasonInWords } from '../imaging/rejection.js';
import { RANDOM_WEIGHTS_BANNER } from '../reports/codes.js';
import { OVERRIDE_REASONS } from './override-reasons.js';
import type { CdsCard } from './types.js';

/** Epic accepts letters and digits only in source.topic codes. */
export const CARD_TOPIC = { system: 'urn:volmo-cds:card-topic', code: 'VOLMOEYEAIDRAFT', display: 'VOLMO ophthalmic AI draft' };
/** Card extension key naming the analysis a card shows (the card uuid is fresh in every response). */
export const ANALYSIS_EXTENSION = 'org.volmo-cds.analysis-id';

/** What every card needs besides the analysis: where it leads, and the call's orders for suggestions. */
export interface CardContext {
  analysisId: string;
  /** The service's public base URL: the model-card page and the SMART app's launch URL hang off it. */
  publicUrl: string;
  patientId: string;
  /** The eye orders of an order hook (suggestions may raise their priority). */
  eyeOrders?: readonly unknown[];
  /** Card and suggestion uuids (fresh per response); injectable for tests. */
  newUuid?: () => string;
}

function source(random: boolean, ctx: Pick<CardContext, 'publicUrl'>, name?: string): CdsCard['source'] {
  return { label: random ? 'volmo-cds (test model)' : name ? `${name} via volmo-cds (AI)` : 'volmo-cds (AI)', url: `${ctx.publicUrl}/model-card`, topic: CARD_TOPIC };
}

function reviewLink(ctx: CardContext): NonNullable<CdsCard['links']>[number] {
  return { label: 'Review the AI draft in VOLMO', url: `${ctx.publicUrl}/launch`, type: 'smart', appContext: JSON.stringify({ analysis: ctx.analysisId }) };
}
/** The label every card from a random-weight model carries (the reports' banner text). */
export const TEST_MODEL_LABEL = RANDOM_WEIGHTS_BANNER;

const ICDR = ['no apparent DR', 'mild NPDR', 'moderate NPDR', 'severe NPDR', 'PDR'];
const INDICATOR: Record<Urgency, CdsCard['indicator']> = { urgent: 'critical', soon: 'warning', routine: 'info', undetermined: 'warning' };
const URGENCY_TEXT: Record<Urgency, string> = {
  urgent: 'urgent ophthalmology referral suggested',
  soon: 'ophthalmology review suggested',
  routine: 'no referable findings',
  undetermined: 'could not be assessed',
};

const label = (id: string) => CONDITIONS.find((c) => c.id === id)?.label ?? id;
const pct = (p: number | undefined) => (p === undefined ? '' : ` (${Math.round(p * 100)}%)`);

function eyeLines(e: EyeFindings): string[] {
  const name = e.eye === 'right' ? 'Right eye' : e.eye === 'left' ? 'Left eye' : 'Eye not stated';
  const lines = [`**${name}**`];
  const ungradable = e.images.filter((i) => !i.gradable);
  if (ungradable.length) lines.push(`- image ungradable: ${ungradable.map((i) => i.reason ?? 'quality').join('; ')}`);
  const dr = e.drStage;
  if (dr.status === 'graded' && dr.grade !== undefined) lines.push(`- diabetic retinopathy: ICDR ${dr.grade} (${ICDR[dr.grade]})${pct(dr.confidence)}${dr.inconsistent ? ' — inconsistent with screening, check' : ''}`);
  else if (dr.status === 'unparseable') lines.push('- diabetic retinopathy stage: model answer not interpretable');
  const positive = e.screening.filter((s) => s.status === 'positive' || s.status === 'indeterminate');
  for (const s of positive) lines.push(`- ${label(s.condition)}: ${s.status}${pct(s.confidence)}${s.inconsistent ? ' — inconsistent, check' : ''}`);
  const negatives = e.screening.filter((s) => s.status === 'negative').length;
  if (negatives) lines.push(`- ${negatives} other screened condition(s) negative`);
  const unparsed = e.screening.filter((s) => s.status === 'unparseable').length;
  if (unparsed) lines.push(`- ${unparsed} screening answer(s) not interpretable`);
  return lines;
}

/** A problem as a clinician reads it: image problems by their reasons in words, never by code. */
function problemText(p: Problem): string {
  if (!p.reasons?.length) return p.message;
  const what = p.kind === 'image_ungradable' ? 'image ungradable' : 'image not used';
  return `${what}: ${p.reasons.map(reasonInWords).join('; ')}`;
}

function problemLines(evidence: EvidenceBundle): string[] {
  const shown = evidence.problems.filter((p) => p.severity !== 'info');
  return shown.length ? ['', '**Evidence problems**', ...shown.slice(0, 8).map((p) => `- ${problemText(p)}`)] : [];
}

export function buildAnalysisCard(result: AnalysisResult, ctx: CardContext & { note?: string }): CdsCard {
  const { findings, model } = result;
  const urgency = findings.referral.urgency;
  const headline = `AI draft: ${URGENCY_TEXT[urgency]}`;
  const reason = findings.referral.reasons[0];
  let summary = reason ? `${headline} — ${reason}` : headline;
  if (model.random) summary = `${TEST_MODEL_LABEL}: ${summary}`;
  if (summary.length > 139) summary = `${summary.slice(0, 138)}…`;
  const detail = [
    ...(model.random ? [`> **${TEST_MODEL_LABEL}.** This model has random weights; its answers mean nothing clinically.`, ''] : []),
    ...(ctx.note ? [`> ${ctx.note}`, ''] : []),
    ...findings.eyes.flatMap((e) => [...eyeLines(e), '']),
    ...(findings.referral.reasons.length ? ['**Why**', ...findings.referral.reasons.map((r) => `- ${r}`)] : []),
    ...problemLines(result.evidence),
    '',
    `AI-generated draft pending clinician review. Model ${model.name} ${model.version} (${model.executionProvider}); task set ${findings.taskSetVersion}. Not a diagnosis.`,
  ].join('\n');
  const newUuid = ctx.newUuid ?? randomUUID;
  // A random-weight model's output never proposes a clinical action.
  const suggestions = model.random ? [] : suggestionsFor(urgency, findings.referral.reasons, ctx, newUuid);
  return {
    uuid: newUuid(),
    summary,
    detail,
    indicator: model.random ? 'info' : INDICATOR[urgency],
    source: source(model.random, ctx, model.name),
    ...(suggestions.length ? { suggestions, selectionBehavior: 'any' as const } : {}),
    overrideReasons: OVERRIDE_REASONS.map((r) => ({ ...r })),
    links: [reviewLink(ctx)],
    extension: { [ANALYSIS_EXTENSION]: ctx.analysisId },
  };
}

const PRIORITY: Partial<Record<Urgency, 'urgent' | 'routine'>> = { urgent: 'urgent', soon: 'routine' };

/**
 * Referable findings: propose an ophthalmology referral (a draft ServiceRequest the clinician may add), and
 * for an urgent one, raising the priority of the eye order being signed. One action per suggestion.
 */
function suggestionsFor(urgency: Urgency, reasons: readonly string[], ctx: CardContext, newUuid: () => string): NonNullable<CdsCard['suggestions']> {
  const priority = PRIORITY[urgency];
  if (!priority) return [];
  const referral = {
    resourceType: 'ServiceRequest',
    status: 'draft',
    intent: 'order',
    priority,
    code: { text: 'Referral to ophthalmology' },
    subject: { reference: `Patient/${ctx.patientId}` },
    reasonCode: reasons.slice(0, 3).map((text) => ({ text: `AI draft finding: ${text}` })),
    note: [{ text: 'Proposed from an AI draft pending clinician review (VOLMO).' }],
  };
  const out: NonNullable<CdsCard['suggestions']> = [
    { label: urgency === 'urgent' ? 'Add an urgent ophthalmology referral' : 'Add an ophthalmology referral', uuid: newUuid(), actions: [{ type: 'create', description: 'Ophthalmology referral (draft order)', resource: referral }] },
  ];
  if (urgency === 'urgent') {
    for (const order of ctx.eyeOrders ?? []) {
      const o = order as { resourceType?: unknown; id?: unknown; priority?: unknown };
      if (typeof o.resourceType !== 'string' || typeof o.id !== 'string' || o.priority === 'urgent' || o.priority === 'stat') continue;
      out.push({ label: "Raise this eye order's priority to urgent", uuid: newUuid(), actions: [{ type: 'update', description: 'Set the draft order priority to urgent', resource: { ...o, priority: 'urgent' } }] });
    }
  }
  return out;
}

/** The analysis is still running: say so plainly, with no findings. */
export function buildPendingCard(images: number, random: boolean, ctx: CardContext): CdsCard {
  const summary = `AI review of ${images} retinal image${images === 1 ? '' : 's'} in progress: results will show on the next chart action`;
  return {
    uuid: (ctx.newUuid ?? randomUUID)(),
    summary: random ? `${TEST_MODEL_LABEL}: ${summary}`.slice(0, 139) : summary,
    detail: 'The VOLMO model is still analysing the images. No findings are available yet; nothing has been concluded. The draft report will be ready for clinician review when the analysis finishes.',
    indicator: 'info',
    source: source(random, ctx),
    extension: { [ANALYSIS_EXTENSION]: ctx.analysisId },
  };
}

/** Problems that stand for an image that could not be assessed (refused, or not fetched), with their reason codes. */
export function unassessedImages(problems: readonly Problem[]): { count: number; reasons: Map<string, number> } {
  const reasons = new Map<string, number>();
  let count = 0;
  for (const p of problems) {
    if (p.kind !== 'image_rejected' && p.kind !== 'pacs_unreachable') continue;
    count++;
    const code = p.reasons?.[0] ?? (p.kind === 'pacs_unreachable' ? 'pacs_unreachable' : 'unknown');
    reasons.set(code, (reasons.get(code) ?? 0) + 1);
  }
  return { count, reasons };
}

/**
 * Images were found but none could be assessed: say how many and why, in plain words, so "no images" and
 * "images we could not read" look different. No findings; nothing is concluded.
 */
export function buildUnassessedCard(problems: readonly Problem[], random: boolean, ctx: Pick<CardContext, 'publicUrl' | 'newUuid'>): CdsCard | undefined {
  const { count, reasons } = unassessedImages(problems);
  if (count === 0) return undefined;
  const ranked = [...reasons].sort((a, b) => b[1] - a[1]);
  const main = reasonInWords(ranked[0]![0]);
  let summary = `${count} eye image${count === 1 ? '' : 's'} could not be assessed: ${main}`;
  if (random) summary = `${TEST_MODEL_LABEL}: ${summary}`;
  if (summary.length > 139) summary = `${summary.slice(0, 138)}…`;
  const detail = [
    '**Why**',
    ...ranked.map(([code, n]) => `- ${n} image${n === 1 ? '' : 's'}: ${reasonInWords(code)}`),
    '',
    'No AI analysis was made of these images and nothing has been concluded about the eyes. Review the images directly, or retake them.',
  ].join('\n');
  return {
    uuid: (ctx.newUuid ?? randomUUID)(),
    summary,
    detail,
    indicator: 'info',
    source: source(random, ctx),
  };
}

/**
 * No AI review this time, for a reason outside the images (the EHR's records did not arrive in time, the
 * model failed): say so plainly, without findings; the next chart action tries again.
 */
export function buildUnavailableCard(reason: string, random: boolean, ctx: Pick<CardContext, 'publicUrl' | 'newUuid'>): CdsCard {
  let summary = `AI review not available: ${reason}`;
  if (random) summary = `${TEST_MODEL_LABEL}: ${summary}`;
  if (summary.length > 139) summary = `${summary.slice(0, 138)}…`;
  return {
    uuid: (ctx.newUuid ?? randomUUID)(),
    summary,
    detail: 'Nothing has been concluded about the eyes. The review is tried again on the next chart action.',
    indicator: 'info',
    source: source(random, ctx),
  };
}
