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
import { buildNoteDocument, renderNoteHtml, renderNoteText, type NoteDocument } from './note.js';
import { buildObservations } from './observations.js';

export interface ReportInput {
  context: ExamContext;
  findings: ExamFindings;
  model: ModelIdentity;
  config: FindingsConfig;
  /** ISO instant the draft is generated (DiagnosticReport.issued, Provenance.recorded, note date). */
  generatedAt: string;
  /** Id source for urn:uuid fullUrls; injectable for deterministic tests. */
  newId?: () => string;
}

export interface ReportOutput {
  bundle: Bundle;
  note: { document: NoteDocument; text: string; html: string };
  diagnosticReport: DiagnosticReport;
  /** fullUrl of each resource, for callers that post them individually. */
  fullUrls: { diagnosticReport: string; device: string; provenance: string; observations: string[] };
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
  const observations = buildObservations({ context, findings, model, device, config });
  const obsUrls = observations.map(() => urn());
  const document = buildNoteDocument({
    findings, model, generatedAt: input.generatedAt, effectiveDateTime: context.effectiveDateTime,
    assessPlanHistory: config.assessPlanHistory,
  });
  const text = renderNoteText(document);
  const html = renderNoteHtml(document);
  const drUrl = urn();
  const diagnosticReport = buildDiagnosticReport({
    context, findings, model, results: obsUrls.map((reference) => ({ reference })), noteText: text, noteHtml: html, issued: input.generatedAt,
  });
  const provUrl = urn();
  const provenance = buildAiProvenance({
    model, context, device, recorded: input.generatedAt,
    targets: [drUrl, ...obsUrls].map((reference) => ({ reference })),
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
      entry(provUrl, provenance),
    ],
  };
  return {
    bundle, note: { document, text, html }, diagnosticReport,
    fullUrls: { diagnosticReport: drUrl, device: deviceUrl, provenance: provUrl, observations: obsUrls },
  };
}
