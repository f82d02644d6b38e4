/**
 * buildReportBundle: findings -> one FHIR R4 transaction Bundle (DiagnosticReport, Observations,
 * Device, Provenance) linked by urn:uuid references, plus the rendered note for EHRs that only
 * accept a clinical note (Epic: DocumentReference docStatus preliminary, text/plain).
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, DiagnosticReport, FhirResource } from 'fhir/r4.js';
import type { FindingsConfig } from '../findings/config.js';
import type { ExamFindings } from '../findings/findings-types.js';
import type { ExamContext, ModelIdentity } from '../findings/types.js';
import { buildAiDevice, buildAiProvenance, testMeta } from './ai-transparency.js';
import { buildDiagnosticReport } from './diagnostic-report.js';
import { buildNoteDocument, renderNoteHtml, renderNoteText, sanitiseModelText, type NoteDocument } from './note.js';
import { buildKeyedObservations } from './observations.js';
import { buildPlanResources } from './plan-resources.js';

export interface ReportInput {
  context: ExamContext;
  findings: ExamFindings;
  model: ModelIdentity;
  config: FindingsConfig;
  /** ISO instant the draft is generated (DiagnosticReport.issued, Provenance.recorded, note date). */
  generatedAt: string;
  /** Id source for urn:uuid fullUrls; injectable for deterministic tests. */
  newId?: () => string;
  /** State of VOLMO's own assessment and plan (the second stage); absent = it was not requested. */
  assessPlanStage?: AssessPlanStage;
}

/** `pending`: runs after the screening result; `failed`: ran and failed (message PHI-free). */
export type AssessPlanStage = { status: 'pending' } | { status: 'done'; completedAt: string } | { status: 'failed'; message: string };

export interface ReportOutput {
  bundle: Bundle;
  note: { document: NoteDocument; text: string; html: string };
  diagnosticReport: DiagnosticReport;
  /** fullUrl of each resource, for callers that post them individually. */
  fullUrls: { diagnosticReport: string; device: string; provenance: string; observations: string[]; serviceRequests: string[]; carePlan?: string };
}

function entry(fullUrl: string, resource: FhirResource): BundleEntry {
  return { fullUrl, resource, request: { method: 'POST', url: resource.resourceType } };
}

export function buildReportBundle(input: ReportInput): ReportOutput {
  const newId = input.newId ?? randomUUID;
  const urn = () => `urn:uuid:${newId()}`;
  const { context, findings, model, config } = input;
  const deviceUrl = urn();
  const device = { reference: deviceUrl, display: `${model.name} ${model.version}` };
  const keyed = buildKeyedObservations({ context, findings, model, device, config });
  const observations = keyed.map((k) => k.observation);
  const obsUrls = observations.map(() => urn());
  const document = buildNoteDocument({
    findings, model, generatedAt: input.generatedAt, effectiveDateTime: context.effectiveDateTime,
    assessPlanHistory: config.assessPlanHistory, assessPlanStage: input.assessPlanStage,
  });
  const text = renderNoteText(document);
  const html = renderNoteHtml(document);
  const drUrl = urn();
  const diagnosticReport = buildDiagnosticReport({
    context, findings, model, results: obsUrls.map((reference) => ({ reference })), noteText: text, noteHtml: html, issued: input.generatedAt,
  });
  const plan = buildPlanResources({
    plan: findings.managementPlan, context, model, diagnosticReportUrl: drUrl, generatedAt: input.generatedAt, newUrn: urn,
    observationUrls: new Map(keyed.map((k, i) => [k.key, obsUrls[i]!])),
    modelSteps: findings.assessPlan.map((s) => ({ ...s, text: sanitiseModelText(s.text) })),
  });
  const proposals = [...plan.serviceRequests, ...(plan.carePlan ? [plan.carePlan] : [])];
  const provUrl = urn();
  const provenance = buildAiProvenance({
    model, context, device, recorded: input.generatedAt,
    targets: [drUrl, ...obsUrls, ...proposals.map((p) => p.fullUrl)].map((reference) => ({ reference })),
  });
  const meta = testMeta(model);
  const bundle: Bundle = {
    resourceType: 'Bundle',
    ...(meta ? { meta } : {}),
    type: 'transaction',
    entry: [
      entry(deviceUrl, buildAiDevice(model)),
      ...observations.map((o, i) => entry(obsUrls[i]!, o)),
      entry(drUrl, diagnosticReport),
      ...proposals.map((p) => entry(p.fullUrl, p.resource)),
      entry(provUrl, provenance),
    ],
  };
  return {
    bundle, note: { document, text, html }, diagnosticReport,
    fullUrls: {
      diagnosticReport: drUrl, device: deviceUrl, provenance: provUrl, observations: obsUrls,
      serviceRequests: plan.serviceRequests.map((s) => s.fullUrl), ...(plan.carePlan ? { carePlan: plan.carePlan.fullUrl } : {}),
    },
  };
}
