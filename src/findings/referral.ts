/**
 * Derived referral urgency (rule and sources in docs/clinical-logic.md, "Referral urgency").
 * ICDR levels: Wilkinson CP et al., Ophthalmology 2003;110:1677-82. The worst eye decides.
 */
import type { FindingsConfig } from './config.js';
import type { EyeFindings, Referral, Urgency } from './findings-types.js';
import { referralText } from './management/format.js';
import type { ManagementPlan } from './management/types.js';
import { CONDITIONS } from './tasks.js';

const RANK: Record<Exclude<Urgency, 'undetermined'>, number> = { routine: 0, soon: 1, urgent: 2 };
const EYE_LABEL = { right: 'right eye', left: 'left eye', unknown: 'eye of unknown laterality' } as const;

interface Reason {
  level: Exclude<Urgency, 'undetermined'>;
  text: string;
}

function eyeReasons(e: EyeFindings, cfg: FindingsConfig): { reasons: Reason[]; assessed: boolean; incomplete: boolean } {
  const where = EYE_LABEL[e.eye];
  const reasons: Reason[] = [];
  let assessed = false;
  let incomplete = false;
  const st = e.drStage;
  if (st.status === 'graded' && st.grade !== undefined) {
    assessed = true;
    if (st.grade === 4) reasons.push({ level: 'urgent', text: `${where}: ICDR 4, proliferative diabetic retinopathy` });
    else if (st.grade === 3) reasons.push({ level: 'urgent', text: `${where}: ICDR 3, severe non-proliferative diabetic retinopathy` });
    else if (st.grade === 2) reasons.push({ level: 'soon', text: `${where}: ICDR 2, moderate non-proliferative diabetic retinopathy (referable)` });
    if (st.referable === 'positive' && st.grade < 2) reasons.push({ level: 'soon', text: `${where}: P(ICDR >= 2) above the referral cut-off` });
    if (st.referable === 'indeterminate') reasons.push({ level: 'soon', text: `${where}: referable-DR probability in the indeterminate band` });
    if (st.inconsistent) reasons.push({ level: 'soon', text: `${where}: DR results inconsistent; clinician grading needed` });
  } else if (st.status === 'unparseable') {
    incomplete = true;
  } else if (st.status === 'ungradable' && cfg.ungradableRefers) {
    reasons.push({ level: 'soon', text: `${where}: fundus image(s) ungradable` });
  }
  for (const f of e.screening) {
    if (f.status === 'positive' || f.status === 'negative') assessed = true;
    const label = CONDITIONS.find((c) => c.id === f.condition)?.label ?? f.condition;
    if (f.status === 'positive') reasons.push({ level: 'soon', text: `${where}: screening positive for ${label.toLowerCase()}` });
    if (f.status === 'indeterminate') reasons.push({ level: 'soon', text: `${where}: screening indeterminate for ${label.toLowerCase()}` });
    if (f.status === 'unparseable') incomplete = true;
  }
  if (e.macularHole.status === 'graded') {
    assessed = true;
    reasons.push({ level: 'soon', text: `${where}: macular-hole stage ${e.macularHole.grade} assigned on OCT` });
  }
  return { reasons, assessed, incomplete };
}

export function deriveReferral(eyes: EyeFindings[], cfg: FindingsConfig): Referral {
  const all = eyes.map((e) => eyeReasons(e, cfg));
  const reasons = all.flatMap((r) => r.reasons).sort((a, b) => RANK[b.level] - RANK[a.level]);
  const top = reasons[0]?.level;
  if (top === 'urgent' || top === 'soon') return { urgency: top, reasons: reasons.map((r) => r.text) };
  const assessed = all.some((r) => r.assessed);
  const incomplete = all.some((r) => r.incomplete);
  if (!assessed || incomplete) {
    return {
      urgency: 'undetermined',
      reasons: [
        assessed
          ? 'some model answers could not be parsed; grade the images manually'
          : incomplete
            ? 'no model answer could be parsed; grade the images manually'
            : 'no gradable image was assessed',
      ],
    };
  }
  return { urgency: 'routine', reasons: ['no referable finding in the assessed images'] };
}

/**
 * The card's urgency never says less than the management plan: a plan referral with priority urgent or asap
 * (RVO within a week, AMD with reduced vision, hypertensive retinopathy at a hypertensive emergency…) makes the
 * urgency 'urgent', a routine one at least 'soon', each named as a reason. It only raises, never lowers.
 */
export function alignWithPlan(referral: Referral, plan: ManagementPlan): Referral {
  const fromPlan: Reason[] = plan.referrals.map((r) => ({
    level: r.priority === 'routine' ? 'soon' : 'urgent',
    text: `management plan: ${referralText(r)} (rule${r.ruleIds.length > 1 ? 's' : ''} ${r.ruleIds.join(', ')})`,
  }));
  const current = referral.urgency === 'undetermined' ? -1 : RANK[referral.urgency];
  const raising = fromPlan.filter((r) => RANK[r.level] > current).sort((a, b) => RANK[b.level] - RANK[a.level]);
  if (!raising.length) return referral;
  const kept = referral.urgency === 'soon' || referral.urgency === 'urgent' ? referral.reasons : [];
  return { urgency: raising[0].level, reasons: [...raising.map((r) => r.text), ...kept] };
}
