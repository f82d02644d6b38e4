/** Output of the management-plan derivation: rule-derived lines, consolidated proposals, model disagreements. */
import type { ExamEye } from '../types.js';
import type { FollowUp, FollowUpAction, Referral, ReferralPriority, Specialty } from './rules.js';

export interface PlanLine {
  ruleId: string;
  /** An eye, or the patient as a whole (e.g. blood pressure). */
  scope: ExamEye | 'patient';
  /** Rendered action(s) and what the rule is about, without the rule id (renderers add it). */
  text: string;
  referral?: Referral;
  followUp?: FollowUp;
  /** Key into PLAN_SOURCES. */
  source: string;
  /** The values the rule used, e.g. "ICDR 2", "IOP 26 mmHg". */
  basis: string[];
  /** Keys of the findings it rests on (observationKey in src/reports/observations.ts). */
  findingKeys: string[];
}

export interface ProposedReferral {
  to: Specialty;
  withinDays: number;
  priority: ReferralPriority;
  tests: string[];
  ruleIds: string[];
  scopes: (ExamEye | 'patient')[];
  findingKeys: string[];
}

export interface ProposedFollowUp {
  action: FollowUpAction;
  fromDays?: number;
  withinDays: number;
  ruleIds: string[];
  scopes: (ExamEye | 'patient')[];
  findingKeys: string[];
}

export type DisagreementCode = 'model-less-urgent' | 'model-later-than-rules' | 'model-more-urgent';

export interface PlanDisagreement {
  code: DisagreementCode;
  message: string;
  ruleIds: string[];
}

export interface ManagementPlan {
  /** PLAN_RULES_VERSION, or the site file's name and sha256 prefix. */
  rulesVersion: string;
  lines: PlanLine[];
  /** One per specialty: the soonest interval and highest priority of its lines. */
  referrals: ProposedReferral[];
  /** One per follow-up action: the soonest of its lines. */
  followUps: ProposedFollowUp[];
  /** Where VOLMO's own plan (assess-plan steps) disagrees with the rules; empty without a model plan. */
  disagreements: PlanDisagreement[];
}
