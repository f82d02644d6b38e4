/**
 * The management plan as FHIR proposals a clinician can accept: one referral ServiceRequest per specialty
 * (status draft, intent proposal, priority from the rules, reasonReference -> the findings' Observations) and
 * the follow-up as a CarePlan (status draft, intent proposal) whose activities reference the referrals. Both
 * are labelled AIAST (they rest on AI findings) and say which rules produced them; VOLMO's own plan, when the
 * second stage ran, is carried as CarePlan notes marked model-generated and unverified. Nothing here is an
 * order: filing them needs the clinician's approval.
 */
import type { CarePlan, CarePlanActivity, Reference, ServiceRequest } from 'fhir/r4.js';
import { followUpText, formatInterval, SPECIALTY_TEXT } from '../findings/management/format.js';
import type { ManagementPlan, ProposedFollowUp, ProposedReferral } from '../findings/management/types.js';
import type { ExamContext, ModelIdentity } from '../findings/types.js';
import { aiMeta } from './ai-transparency.js';

export interface PlanResourceInput {
  plan: ManagementPlan;
  context: ExamContext;
  model: ModelIdentity;
  /** fullUrl of each Observation by finding key. */
  observationUrls: ReadonlyMap<string, string>;
  diagnosticReportUrl: string;
  generatedAt: string;
  /** VOLMO's own assessment-and-plan steps (second stage), already sanitised; empty when it did not run. */
  modelSteps: readonly { step: number; title: string; text: string }[];
  newUrn: () => string;
}

export interface PlanResources {
  serviceRequests: { fullUrl: string; resource: ServiceRequest }[];
  carePlan?: { fullUrl: string; resource: CarePlan };
}

const DAY_MS = 86_400_000;
export const RULE_DERIVED = 'Rule-derived proposal (volmo-cds plan rules applied to AI findings; not an order until a clinician accepts it)';

function period(from: string, fromDays: number | undefined, withinDays: number): { start: string; end: string } {
  const t = Date.parse(from);
  return { start: new Date(t + (fromDays ?? 0) * DAY_MS).toISOString().slice(0, 10), end: new Date(t + withinDays * DAY_MS).toISOString().slice(0, 10) };
}

function reasons(keys: readonly string[], urls: ReadonlyMap<string, string>): Reference[] {
  return [...new Set(keys.map((k) => urls.get(k)).filter((u): u is string => Boolean(u)))].map((reference) => ({ reference }));
}

function ruleNote(ruleIds: readonly string[], version: string): { text: string } {
  return { text: `${RULE_DERIVED}: rules ${ruleIds.join(', ')} (${version}); sources in docs/clinical-logic.md §11.` };
}

function serviceRequest(r: ProposedReferral, input: PlanResourceInput): ServiceRequest {
  const { context } = input;
  const reasonReference = reasons(r.findingKeys, input.observationUrls);
  return {
    resourceType: 'ServiceRequest',
    meta: aiMeta(input.model),
    status: 'draft',
    intent: 'proposal',
    priority: r.priority,
    category: [{ text: 'Referral' }],
    code: { text: `Referral to ${SPECIALTY_TEXT[r.to]} ${formatInterval(undefined, r.withinDays)}` },
    ...(r.tests.length > 0 ? { orderDetail: r.tests.map((text) => ({ text })) } : {}),
    subject: { reference: context.patient },
    ...(context.encounter ? { encounter: { reference: context.encounter } } : {}),
    occurrencePeriod: period(input.generatedAt, undefined, r.withinDays),
    authoredOn: input.generatedAt,
    performerType: { text: SPECIALTY_TEXT[r.to] },
    ...(reasonReference.length > 0 ? { reasonReference } : {}),
    supportingInfo: [{ reference: input.diagnosticReportUrl }],
    note: [ruleNote(r.ruleIds, input.plan.rulesVersion)],
  };
}

function followUpActivity(f: ProposedFollowUp, input: PlanResourceInput): CarePlanActivity {
  const reasonReference = reasons(f.findingKeys, input.observationUrls);
  return {
    detail: {
      code: { text: followUpText(f) },
      ...(reasonReference.length > 0 ? { reasonReference } : {}),
      status: 'not-started',
      scheduledPeriod: period(input.generatedAt, f.fromDays, f.withinDays),
      description: `${followUpText(f)} [rules ${f.ruleIds.join(', ')}; rule-derived]`,
    },
  };
}

export function buildPlanResources(input: PlanResourceInput): PlanResources {
  const { plan, context } = input;
  const serviceRequests = plan.referrals.map((r) => ({ fullUrl: input.newUrn(), resource: serviceRequest(r, input) }));
  if (serviceRequests.length === 0 && plan.followUps.length === 0) return { serviceRequests };
  const notes = [
    ruleNote([...new Set(plan.lines.map((l) => l.ruleId))], plan.rulesVersion),
    ...plan.disagreements.map((d) => ({ text: `DISAGREEMENT between VOLMO's own plan and the rules (${d.code}): ${d.message}` })),
    ...input.modelSteps.filter((s) => s.step >= 2).map((s) => ({ text: `VOLMO ${s.title} (model-generated, unverified): ${s.text}` })),
  ];
  const carePlan: CarePlan = {
    resourceType: 'CarePlan',
    meta: aiMeta(input.model),
    status: 'draft',
    intent: 'proposal',
    title: 'Eye-care referral and follow-up proposed from an AI retinal exam (draft)',
    description: plan.lines.map((l) => `${l.scope === 'patient' ? 'Patient' : `${l.scope} eye`}: ${l.text} [rule ${l.ruleId}]`).join('\n'),
    subject: { reference: context.patient },
    ...(context.encounter ? { encounter: { reference: context.encounter } } : {}),
    created: input.generatedAt,
    supportingInfo: [{ reference: input.diagnosticReportUrl }],
    activity: [
      ...serviceRequests.map((s) => ({ reference: { reference: s.fullUrl, display: s.resource.code?.text } })),
      ...plan.followUps.map((f) => followUpActivity(f, input)),
    ],
    note: notes,
  };
  return { serviceRequests, carePlan: { fullUrl: input.newUrn(), resource: carePlan } };
}
