/**
 * deriveManagementPlan: per-eye findings + recorded measurements + the rule table -> plan lines (each naming
 * its rule), consolidated into one proposed referral per specialty and one follow-up per action. Pure. When
 * each rule applies is documented in docs/clinical-logic.md §12; the actions come from the table only.
 */
import type { ConditionFinding, EyeFindings } from '../findings-types.js';
import type { ConditionId } from '../tasks.js';
import { CONDITIONS } from '../tasks.js';
import type { ClinicalFacts, ExamEye } from '../types.js';
import { followUpText, referralText } from './format.js';
import type { PlanRule, PlanRuleTable, ReferralPriority } from './rules.js';
import type { ManagementPlan, PlanLine, ProposedFollowUp, ProposedReferral } from './types.js';

const PRIORITY_RANK: Record<ReferralPriority, number> = { routine: 0, urgent: 1, asap: 2 };
const DIABETIC_GRADE = 1;

/** The key of the Observation a finding is reported in (src/reports/observations.ts uses the same keys). */
export const findingKey = {
  dr: (eye: ExamEye) => `dr:${eye}`,
  screening: (eye: ExamEye, c: ConditionId) => `screening:${eye}:${c}`,
  macularHole: (eye: ExamEye) => `mh:${eye}`,
};

function lineFor(rule: PlanRule, scope: PlanLine['scope'], basis: string[], findingKeys: string[]): PlanLine {
  const actions = [rule.referral ? referralText(rule.referral) : undefined, rule.followUp ? followUpText(rule.followUp) : undefined].filter(Boolean);
  const text = `${actions.length ? actions.join('; ') : 'no action'}: ${rule.text}`;
  return {
    ruleId: rule.id, scope, text: text.charAt(0).toUpperCase() + text.slice(1), source: rule.source, basis, findingKeys,
    ...(rule.referral ? { referral: rule.referral } : {}), ...(rule.followUp ? { followUp: rule.followUp } : {}),
  };
}

const label = (c: ConditionId) => CONDITIONS.find((x) => x.id === c)!.label.toLowerCase();
const threshold = (rule: PlanRule | undefined, key: string) => rule?.thresholds?.[key];

class LineSink {
  readonly lines: PlanLine[] = [];
  constructor(private readonly table: PlanRuleTable) {}
  add(id: string, scope: PlanLine['scope'], basis: string[], keys: string[]): void {
    const rule = this.table.rules[id];
    if (rule) this.lines.push(lineFor(rule, scope, basis, keys));
  }
}

function drLines(e: EyeFindings, out: LineSink, positive: (c: ConditionId) => boolean): void {
  const st = e.drStage;
  const me = positive('macular-edema');
  const meKeys = me ? [findingKey.screening(e.eye, 'macular-edema')] : [];
  const meBasis = me ? ['macular edema: screening positive'] : [];
  if (st.status === 'graded' && st.grade !== undefined) {
    out.add(`dr-icdr${st.grade}${me ? '-me' : ''}`, e.eye, [`ICDR ${st.grade}`, ...meBasis], [findingKey.dr(e.eye), ...meKeys]);
    if (st.grade < 2 && (st.referable === 'positive' || st.referable === 'indeterminate')) {
      out.add('dr-referable-uncertain', e.eye, [`P(ICDR >= 2) ${st.pReferable?.toFixed(2) ?? 'n/a'}, referable: ${st.referable}`], [findingKey.dr(e.eye)]);
    }
    return;
  }
  if (me) out.add('macular-edema', e.eye, [...meBasis, `DR stage ${st.status}`], meKeys);
  if (positive('diabetic-retinopathy')) out.add('dr-unstaged', e.eye, ['diabetic retinopathy: screening positive', `DR stage ${st.status}`], [findingKey.screening(e.eye, 'diabetic-retinopathy')]);
}

function conditionLines(e: EyeFindings, facts: ClinicalFacts | undefined, table: PlanRuleTable, out: LineSink, positive: (c: ConditionId) => boolean): void {
  const key = (c: ConditionId) => [findingKey.screening(e.eye, c)];
  const eyeValue = (v: { right?: number; left?: number } | undefined) => (e.eye === 'unknown' ? undefined : v?.[e.eye]);
  if (positive('amd')) {
    const va = eyeValue(facts?.logMar);
    const limit = threshold(table.rules['amd-reduced-vision'], 'logMarAtLeast');
    if (va !== undefined && limit !== undefined && va >= limit) out.add('amd-reduced-vision', e.eye, [`visual acuity logMAR ${va.toFixed(2)}`], key('amd'));
    else out.add('amd', e.eye, [va === undefined ? 'visual acuity not documented' : `visual acuity logMAR ${va.toFixed(2)}`], key('amd'));
  } else if (positive('retinal-drusen')) out.add('retinal-drusen', e.eye, [], key('retinal-drusen'));
  const glaucoma = (['increased-cup-to-disc-ratio', 'glaucoma'] as const).filter(positive);
  if (glaucoma.length > 0) {
    const iop = eyeValue(facts?.iopMmHg);
    const limit = threshold(table.rules['glaucoma-suspect-high-iop'], 'iopMmHgAtLeast');
    const high = iop !== undefined && limit !== undefined && iop >= limit;
    out.add(high ? 'glaucoma-suspect-high-iop' : 'glaucoma-suspect', e.eye, [...glaucoma.map((c) => `${label(c)}: screening positive`), iop === undefined ? 'IOP not documented' : `IOP ${iop} mmHg`], glaucoma.flatMap(key));
  }
  if (positive('retinal-vascular-occlusion')) out.add('retinal-vascular-occlusion', e.eye, [], key('retinal-vascular-occlusion'));
  const graded = e.drStage.status === 'graded' && (e.drStage.grade ?? 0) >= DIABETIC_GRADE;
  if (positive('retinal-hemorrhage') && !graded) out.add('retinal-hemorrhage', e.eye, [bpText(facts), hba1cText(facts)], key('retinal-hemorrhage'));
  for (const c of ['choroidal-nevus', 'myopic-fundus-changes', 'retinal-scarring'] as const) if (positive(c)) out.add(c, e.eye, [], key(c));
  if (e.macularHole.status === 'graded') out.add('macular-hole', e.eye, [`stage ${e.macularHole.grade}`], [findingKey.macularHole(e.eye)]);
}

function bpText(f: ClinicalFacts | undefined): string {
  return f?.bloodPressure ? `blood pressure ${Math.round(f.bloodPressure.systolicMmHg)}/${Math.round(f.bloodPressure.diastolicMmHg)} mmHg` : 'blood pressure not documented';
}
function hba1cText(f: ClinicalFacts | undefined): string {
  return f?.hba1cPercent !== undefined ? `HbA1c ${f.hba1cPercent}%` : 'HbA1c not documented';
}

function qualityLines(e: EyeFindings, out: LineSink): void {
  const st = e.drStage;
  if (st.status === 'ungradable' || (e.screening.length > 0 && e.screening.every((f) => f.status === 'ungradable'))) {
    const reasons = e.images.filter((i) => !i.gradable).map((i) => i.reason ?? 'ungradable');
    out.add('ungradable', e.eye, reasons, st.status === 'ungradable' ? [findingKey.dr(e.eye)] : []);
  }
  const unsure: ConditionFinding[] = e.screening.filter((f) => f.status === 'indeterminate' || f.status === 'unparseable');
  if (unsure.length > 0 || st.status === 'unparseable') {
    const what = [...unsure.map((f) => `${label(f.condition)}: ${f.status}`), ...(st.status === 'unparseable' ? ['DR stage: unparseable'] : [])];
    out.add('indeterminate', e.eye, what, [...unsure.map((f) => findingKey.screening(e.eye, f.condition)), ...(st.status === 'unparseable' ? [findingKey.dr(e.eye)] : [])]);
  }
}

function patientLines(eyes: EyeFindings[], facts: ClinicalFacts | undefined, table: PlanRuleTable, out: LineSink): void {
  const positiveIn = (c: ConditionId) => eyes.filter((e) => e.screening.some((f) => f.condition === c && f.status === 'positive'));
  const hrEyes = positiveIn('hypertensive-retinopathy');
  if (hrEyes.length > 0) {
    const severe = table.rules['hypertensive-retinopathy-severe-bp'];
    const bp = facts?.bloodPressure;
    const [sys, dia] = [threshold(severe, 'systolicMmHgAbove'), threshold(severe, 'diastolicMmHgAbove')];
    const isSevere = bp !== undefined && ((sys !== undefined && bp.systolicMmHg > sys) || (dia !== undefined && bp.diastolicMmHg > dia));
    const keys = hrEyes.map((e) => findingKey.screening(e.eye, 'hypertensive-retinopathy'));
    out.add(isSevere ? 'hypertensive-retinopathy-severe-bp' : 'hypertensive-retinopathy', 'patient', [bpText(facts)], keys);
  }
  const diabeticEyes = eyes.filter((e) => (e.drStage.status === 'graded' && (e.drStage.grade ?? 0) >= DIABETIC_GRADE)
    || e.screening.some((f) => (f.condition === 'diabetic-retinopathy' || f.condition === 'macular-edema') && f.status === 'positive'));
  const a1cLimit = threshold(table.rules['glycaemic-review'], 'hba1cPercentAtLeast');
  if (diabeticEyes.length > 0 && facts?.hba1cPercent !== undefined && a1cLimit !== undefined && facts.hba1cPercent >= a1cLimit) {
    out.add('glycaemic-review', 'patient', [hba1cText(facts)], diabeticEyes.map((e) => (e.drStage.status === 'graded' ? findingKey.dr(e.eye) : findingKey.screening(e.eye, 'diabetic-retinopathy'))));
  }
}

function consolidateReferrals(lines: PlanLine[]): ProposedReferral[] {
  const by = new Map<string, ProposedReferral>();
  for (const l of lines) {
    const r = l.referral;
    if (!r) continue;
    const cur = by.get(r.to);
    if (!cur) {
      by.set(r.to, { to: r.to, withinDays: r.withinDays, priority: r.priority, tests: [...(r.tests ?? [])], ruleIds: [l.ruleId], scopes: [l.scope], findingKeys: [...l.findingKeys] });
      continue;
    }
    cur.withinDays = Math.min(cur.withinDays, r.withinDays);
    if (PRIORITY_RANK[r.priority] > PRIORITY_RANK[cur.priority]) cur.priority = r.priority;
    merge(cur.tests, r.tests ?? []);
    merge(cur.ruleIds, [l.ruleId]);
    merge(cur.scopes, [l.scope]);
    merge(cur.findingKeys, l.findingKeys);
  }
  return [...by.values()].sort((a, b) => PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority] || a.withinDays - b.withinDays);
}

function consolidateFollowUps(lines: PlanLine[]): ProposedFollowUp[] {
  const by = new Map<string, ProposedFollowUp>();
  for (const l of lines) {
    const f = l.followUp;
    if (!f) continue;
    const cur = by.get(f.action);
    if (!cur || f.withinDays < cur.withinDays) {
      by.set(f.action, { ...f, ruleIds: [...(cur?.ruleIds ?? []), l.ruleId], scopes: [...(cur?.scopes ?? []), l.scope], findingKeys: [...(cur?.findingKeys ?? []), ...l.findingKeys] });
    } else {
      merge(cur.ruleIds, [l.ruleId]);
      merge(cur.scopes, [l.scope]);
      merge(cur.findingKeys, l.findingKeys);
    }
  }
  for (const f of by.values()) f.ruleIds = [...new Set(f.ruleIds)];
  return [...by.values()].sort((a, b) => a.withinDays - b.withinDays);
}

function merge<T>(into: T[], more: readonly T[]): void {
  for (const x of more) if (!into.includes(x)) into.push(x);
}

export function deriveManagementPlan(eyes: readonly EyeFindings[], facts: ClinicalFacts | undefined, table: PlanRuleTable): ManagementPlan {
  const out = new LineSink(table);
  for (const e of eyes) {
    const positive = (c: ConditionId) => e.screening.some((f) => f.condition === c && f.status === 'positive');
    drLines(e, out, positive);
    conditionLines(e, facts, table, out, positive);
    qualityLines(e, out);
  }
  patientLines([...eyes], facts, table, out);
  const assessed = eyes.some((e) => e.screening.some((f) => f.status === 'negative' || f.status === 'positive') || e.drStage.status === 'graded');
  if (out.lines.length === 0 && assessed) out.add('no-referable-finding', 'patient', ['no positive finding'], []);
  return { rulesVersion: table.version, lines: out.lines, referrals: consolidateReferrals(out.lines), followUps: consolidateFollowUps(out.lines), disagreements: [] };
}
