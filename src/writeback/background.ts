/**
 * The AI draft written back in the background, as a job on the durable queue (store/port.ts `JobQueue`):
 * when an analysis job has stored its result, the replica that ran it queues one `draft-writeback` job per
 * (FHIR base, analysis) — the queue keeps one job per key across replicas — and whichever replica claims it
 * writes the draft with this service's SMART Backend Services token (actor `system` in the audit trail),
 * through the same WritebackService as the clinician's approval (idempotency record per base + analysis +
 * `draft`). Only to FHIR bases named in VOLMO_WRITEBACK_BACKGROUND whose profile writes a draft before
 * approval: `fhir-standard` (preliminary DiagnosticReport transaction) and `epic` (unsigned note); never
 * `oracle` (signed notes only) or `off`.
 *
 * How a write's outcome ends the job: written, already there, or approved/discarded meanwhile: done; the EHR
 * refused (4xx, or a precondition such as Epic's encounter): dead at once (not retried; the audit row says
 * `refused`); no usable answer (5xx, timeout, unreachable): retried with the queue's backoff, with the same
 * idempotency key (an interrupted attempt is reconciled with the EHR before anything is written again).
 */
import { canonicalBaseUrl } from '../analysis/analysis-cache.js';
import { JobError } from '../analysis/job-runner.js';
import type { FhirClient, FhirWriter } from '../fhir/client.js';
import type { Logger } from '../log.js';
import type { AnalysisStore, ClaimedJob } from '../store/port.js';
import { profileFor, type WritebackProfileName, type WritebackSettings } from './profiles.js';
import type { WritebackService } from './service.js';

/** The job's payload: ids only (the analysis is read from the store when the job runs). */
export interface DraftJobPayload {
  v: 1;
  kind: 'draft-writeback';
  analysisId: string;
  fhirBase: string;
}

export const DRAFT_JOB_KIND = 'draft-writeback';

/** One job per EHR FHIR base and analysis. */
export function draftJobKey(fhirBase: string, analysisId: string): string {
  return `${DRAFT_JOB_KIND}:${canonicalBaseUrl(fhirBase)}:${analysisId}`;
}

/** Profiles that write a draft before the clinician approves. */
const BACKGROUND_PROFILES: readonly WritebackProfileName[] = ['fhir-standard', 'epic'];

/**
 * The profile a background draft for `fhirBase` is written under, or undefined when none is: the base is not
 * one of `bases` (VOLMO_WRITEBACK_BACKGROUND), or its profile writes nothing before approval.
 */
export function backgroundDraftProfile(settings: WritebackSettings, bases: readonly string[], fhirBase: string): WritebackProfileName | undefined {
  const base = canonicalBaseUrl(fhirBase);
  if (!bases.some((b) => canonicalBaseUrl(b) === base)) return undefined;
  const profile = profileFor(settings, fhirBase);
  return BACKGROUND_PROFILES.includes(profile) ? profile : undefined;
}

/** The FHIR base of an analysis from its subject (`analysisSubject`: `<base>|Patient/<id>`); undefined for prefetch-only subjects. */
export function subjectFhirBase(subject: string): string | undefined {
  const i = subject.lastIndexOf('|Patient/');
  if (i <= 0) return undefined;
  const base = subject.slice(0, i);
  return /^https?:\/\//.test(base) ? base : undefined;
}

/** SMART Backend Services scopes for a profile's background draft (what `draft` writes, and the searches that find it again). */
export function backgroundWriteScopes(profile: WritebackProfileName): string {
  switch (profile) {
    case 'fhir-standard':
      return 'system/DiagnosticReport.crus system/Observation.crs system/Device.crs system/Provenance.crs system/ServiceRequest.c system/CarePlan.c';
    case 'epic':
      return 'system/DocumentReference.crs';
    default:
      return '';
  }
}

export interface DraftJobDeps {
  writeback: WritebackService;
  analyses: Pick<AnalysisStore, 'findById'>;
  /** This service's Backend Services writer for `fhirBase`, or undefined when it has none. */
  writerFor: (fhirBase: string) => (FhirClient & FhirWriter) | undefined;
  log: Logger;
}

/** Runs one draft-writeback job; resolves with the analysis id (the job is done), throws `JobError` otherwise. */
export async function runDraftJob(deps: DraftJobDeps, job: ClaimedJob<DraftJobPayload>): Promise<string> {
  const { analysisId, fhirBase } = job.payload;
  const fhir = deps.writerFor(fhirBase);
  if (!fhir) throw new JobError({ errorKind: 'no_backend_access', retryable: false, holdMs: 15 * 60_000 });
  const stored = await deps.analyses.findById(analysisId);
  if (!stored) throw new JobError({ errorKind: 'analysis_gone', retryable: false, holdMs: 15 * 60_000 });
  // The queue's lease already keeps two attempts apart: a `pending` record is an interrupted attempt, reconciled now.
  const out = await deps.writeback.run('draft', { fhir, analysisId, result: stored.result, clinician: 'system' }, { inFlightMs: 0 });
  deps.log.info({ job: job.id, analysis: analysisId, outcome: out.kind, profile: out.profile }, 'background draft write-back');
  switch (out.kind) {
    case 'written':
    case 'already':
    case 'conflict':
    case 'off':
      return analysisId;
    case 'refused':
      throw new JobError({ errorKind: 'ehr_refused', retryable: false, holdMs: 15 * 60_000, ...(out.status ? { detail: { status: out.status } } : {}) });
    case 'in-progress':
      throw new JobError({ errorKind: 'writeback_in_progress', retryable: true, holdMs: 60_000 });
    case 'failed':
      throw new JobError({ errorKind: out.status ? 'ehr_error' : 'ehr_unreachable', retryable: true, holdMs: 15 * 60_000 });
  }
}
