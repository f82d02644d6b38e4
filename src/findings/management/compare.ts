/**
 * Compares VOLMO's own plan (assess-plan steps 3 and 5, free text) with the rule-derived plan and flags where
 * they disagree on urgency. The model text is only read for explicit cues (urgent/immediate, routine/annual,
 * "refer", stated intervals such as "in 2-4 months"); nothing is inferred beyond them, and a text without
 * cues is not compared. Pure.
 */
import { formatDays } from './format.js';
import type { ManagementPlan, PlanDisagreement } from './types.js';

export type ModelUrgency = 'urgent' | 'referral' | 'routine';

export interface ModelPlanReading {
  urgency?: ModelUrgency;
  /** The soonest stated interval in days, and the phrase it came from. */
  soonestDays?: number;
  phrase?: string;
}

const URGENT = /\b(urgent(?:ly)?|immediate(?:ly)?|emergen(?:cy|t)|same[- ]day|as soon as possible|asap|promptly|without delay)\b/i;
const REFER = /\b(refer(?:ral|red)?|specialist|ophthalmolog\w*|retina(?:l)? (?:clinic|service|specialist))\b/i;
const ROUTINE = /\b(routine|annual(?:ly)?|yearly|every (?:12|twelve) months|no (?:referral|treatment|follow-up) (?:is )?(?:needed|required))\b/i;
const INTERVAL = /\b(\d{1,3})(?:\s*(?:-|–|to)\s*(\d{1,3}))?\s*(day|week|month|year)s?\b/gi;
const UNIT_DAYS: Record<string, number> = { day: 1, week: 7, month: 30, year: 365 };

/** Reads urgency cues and the soonest stated interval from the model's plan text. */
export function readModelPlan(text: string): ModelPlanReading {
  const reading: ModelPlanReading = {};
  for (const m of text.matchAll(INTERVAL)) {
    const days = Number(m[1]) * UNIT_DAYS[m[3]!.toLowerCase()]!;
    if (days > 0 && (reading.soonestDays === undefined || days < reading.soonestDays)) {
      reading.soonestDays = days;
      reading.phrase = m[0];
    }
  }
  const urgentCue = URGENT.exec(text);
  const routineCue = ROUTINE.exec(text);
  if (urgentCue || (reading.soonestDays !== undefined && reading.soonestDays <= 7)) reading.urgency = 'urgent';
  else if (REFER.test(text)) reading.urgency = 'referral';
  else if (routineCue || (reading.soonestDays !== undefined && reading.soonestDays >= 180)) reading.urgency = 'routine';
  reading.phrase ??= (reading.urgency === 'urgent' ? urgentCue?.[0] : routineCue?.[0]);
  return reading;
}

/**
 * Steps 3 (assessment and plan) and 5 (follow-up care) carry VOLMO's plan; step 4 (treatments) is left out,
 * and so are the prompt's own format labels ("Immediate outcome:"), which are not urgency cues.
 */
export function modelPlanText(steps: readonly { step: number; text: string }[]): string {
  return steps.filter((s) => s.step === 3 || s.step === 5).map((s) => s.text.replace(/\b(?:immediate|long-term) outcomes?:/gi, '')).join('\n');
}

export function compareWithModel(plan: ManagementPlan, steps: readonly { step: number; text: string }[]): PlanDisagreement[] {
  const text = modelPlanText(steps);
  if (!text.trim()) return [];
  const model = readModelPlan(text);
  const soonest = plan.referrals[0];
  const urgentRules = plan.referrals.filter((r) => r.priority !== 'routine');
  const said = model.phrase ? ` ("${model.phrase}")` : '';
  const out: PlanDisagreement[] = [];
  if (urgentRules.length > 0 && model.urgency === 'routine') {
    const ids = urgentRules.flatMap((r) => r.ruleIds);
    out.push({ code: 'model-less-urgent', ruleIds: ids, message: `VOLMO suggests routine follow-up${said} while the rules say urgent referral within ${formatDays(urgentRules[0]!.withinDays)} (rules ${ids.join(', ')})` });
  } else if (soonest && model.urgency !== 'urgent' && model.soonestDays !== undefined && model.soonestDays > soonest.withinDays) {
    out.push({ code: 'model-later-than-rules', ruleIds: soonest.ruleIds, message: `VOLMO's soonest timing${said} is later than the rules' referral within ${formatDays(soonest.withinDays)} (rules ${soonest.ruleIds.join(', ')})` });
  }
  if (plan.referrals.length === 0 && model.urgency === 'urgent') {
    const ids = plan.lines.map((l) => l.ruleId);
    out.push({ code: 'model-more-urgent', ruleIds: ids, message: `VOLMO suggests urgent care${said} while the rules propose no referral (rules ${ids.join(', ') || 'none'})` });
  }
  return out;
}
