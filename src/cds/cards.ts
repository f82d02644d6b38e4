/**
 * Analysis -> CDS cards. Pure. One card per analysed patient: the referral urgency decides the indicator,
 * the detail lists per-eye findings with confidence, what could not be assessed and why, and the model
 * that produced it. Output of a random-weight test model is labelled as such and never raises an alarm.
 */
import type { AnalysisResult } from '../analysis/analyse.js';
import type { EvidenceBundle, Problem } from '../evidence/types.js';
import type { EyeFindings, Urgency } from '../findings/findings-types.js';
import { CONDITIONS } from '../findings/tasks.js';
import { reasonInWords } from '../imaging/rejection.js';
import { RANDOM_WEIGHTS_BANNER } from '../reports/codes.js';
import type { CdsCard } from './types.js';

export const CARD_TOPIC = { system: 'urn:volmo-cds:card-topic', code: 'volmo-eye-ai-draft', display: 'VOLMO ophthalmic AI draft' };
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

export function buildAnalysisCard(result: AnalysisResult, opts: { uuid: string; sourceUrl?: string; note?: string }): CdsCard {
  const { findings, model } = result;
  const urgency = findings.referral.urgency;
  const headline = `AI draft: ${URGENCY_TEXT[urgency]}`;
  const reason = findings.referral.reasons[0];
  let summary = reason ? `${headline} — ${reason}` : headline;
  if (model.random) summary = `${TEST_MODEL_LABEL}: ${summary}`;
  if (summary.length > 139) summary = `${summary.slice(0, 138)}…`;
  const detail = [
    ...(model.random ? [`> **${TEST_MODEL_LABEL}.** This model has random weights; its answers mean nothing clinically.`, ''] : []),
    ...(opts.note ? [`> ${opts.note}`, ''] : []),
    ...findings.eyes.flatMap((e) => [...eyeLines(e), '']),
    ...(findings.referral.reasons.length ? ['**Why**', ...findings.referral.reasons.map((r) => `- ${r}`)] : []),
    ...problemLines(result.evidence),
    '',
    `AI-generated draft pending clinician review. Model ${model.name} ${model.version} (${model.executionProvider}); task set ${findings.taskSetVersion}. Not a diagnosis.`,
  ].join('\n');
  return {
    uuid: opts.uuid,
    summary,
    detail,
    indicator: model.random ? 'info' : INDICATOR[urgency],
    source: { label: model.random ? 'volmo-cds (test model)' : `${model.name} via volmo-cds (AI)`, url: opts.sourceUrl, topic: CARD_TOPIC },
  };
}

/** The analysis is still running: say so plainly, with no findings. */
export function buildPendingCard(images: number, random: boolean, opts: { uuid: string }): CdsCard {
  const summary = `AI review of ${images} retinal image${images === 1 ? '' : 's'} in progress: results will show on the next chart action`;
  return {
    uuid: opts.uuid,
    summary: random ? `${TEST_MODEL_LABEL}: ${summary}`.slice(0, 139) : summary,
    detail: 'The VOLMO model is still analysing the images. No findings are available yet; nothing has been concluded. The draft report will be ready for clinician review when the analysis finishes.',
    indicator: 'info',
    source: { label: random ? 'volmo-cds (test model)' : 'volmo-cds (AI)', topic: CARD_TOPIC },
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
export function buildUnassessedCard(problems: readonly Problem[], opts: { uuid: string; random: boolean }): CdsCard | undefined {
  const { count, reasons } = unassessedImages(problems);
  if (count === 0) return undefined;
  const ranked = [...reasons].sort((a, b) => b[1] - a[1]);
  const main = reasonInWords(ranked[0]![0]);
  let summary = `${count} eye image${count === 1 ? '' : 's'} could not be assessed: ${main}`;
  if (opts.random) summary = `${TEST_MODEL_LABEL}: ${summary}`;
  if (summary.length > 139) summary = `${summary.slice(0, 138)}…`;
  const detail = [
    '**Why**',
    ...ranked.map(([code, n]) => `- ${n} image${n === 1 ? '' : 's'}: ${reasonInWords(code)}`),
    '',
    'No AI analysis was made of these images and nothing has been concluded about the eyes. Review the images directly, or retake them.',
  ].join('\n');
  return {
    uuid: opts.uuid,
    summary,
    detail,
    indicator: 'info',
    source: { label: opts.random ? 'volmo-cds (test model)' : 'volmo-cds (AI)', topic: CARD_TOPIC },
  };
}
