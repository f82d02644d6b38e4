/**
 * The kinds of work on the one durable job queue, told apart by the payload's `kind` (none: an analysis,
 * the first kind, keyed by its analysis key), and what follows an analysis:
 *   analysis         pipeline.ts `runAnalysisJob`           key: the analysis key (analysis-cache.ts)
 *   assess-plan      assess-plan-job.ts `runAssessPlanJob`  key: `assess-plan:<analysisId>`
 *   draft-writeback  writeback/background.ts `runDraftJob`  key: `draft-writeback:<fhirBase>:<analysisId>`
 * Every kind is claimed by the same JobRunner, retried with the same backoff, dead after the same attempts,
 * and listed at /admin/jobs; a follow-up job is done linked to its analysis id (and, like an analysis job,
 * is not queued again while that analysis is retained).
 */
import type { Logger } from '../log.js';
import type { ClaimedJob, JobQueue } from '../store/port.js';
import { draftJobKey, type DraftJobPayload } from '../writeback/background.js';
import { assessPlanJob, assessPlanJobKey, type AssessPlanJobPayload } from './assess-plan-job.js';
import { JobError } from './job-runner.js';
import type { AnalysisJobPayload, FollowUps } from './pipeline.js';

export type JobKind = 'analysis' | 'assess-plan' | 'draft-writeback';
export type AnyJobPayload = AnalysisJobPayload | AssessPlanJobPayload | DraftJobPayload;

export function jobKindOf(payload: unknown): JobKind {
  const kind = (payload as { kind?: unknown } | null)?.kind;
  return kind === 'assess-plan' || kind === 'draft-writeback' ? kind : 'analysis';
}

/** The kind of a job from its key (what /admin/jobs shows; payloads are never shown). */
export function jobKindOfKey(key: string): JobKind {
  if (key.startsWith('assess-plan:')) return 'assess-plan';
  if (key.startsWith('draft-writeback:')) return 'draft-writeback';
  return 'analysis';
}

export interface JobHandlers {
  analysis: (job: ClaimedJob<AnalysisJobPayload>, signal: AbortSignal) => Promise<string>;
  /** Absent: this replica runs no second stage (VOLMO_ASSESS_PLAN): such a job is dead here. */
  assessPlan?: (job: ClaimedJob<AssessPlanJobPayload>, signal: AbortSignal) => Promise<string>;
  draft?: (job: ClaimedJob<DraftJobPayload>, signal: AbortSignal) => Promise<string>;
}

/** One `handle` for the JobRunner: each job to the handler of its kind. */
export function dispatchJob(h: JobHandlers): (job: ClaimedJob<AnyJobPayload>, signal: AbortSignal) => Promise<string> {
  return async (job, signal) => {
    switch (jobKindOf(job.payload)) {
      case 'assess-plan':
        if (!h.assessPlan) throw new JobError({ errorKind: 'assess_plan_off', retryable: false, holdMs: 60_000 });
        return h.assessPlan(job as ClaimedJob<AssessPlanJobPayload>, signal);
      case 'draft-writeback':
        if (!h.draft) throw new JobError({ errorKind: 'no_backend_access', retryable: false, holdMs: 60_000 });
        return h.draft(job as ClaimedJob<DraftJobPayload>, signal);
      default:
        return h.analysis(job as ClaimedJob<AnalysisJobPayload>, signal);
    }
  };
}

export interface FollowUpSettings {
  queue: JobQueue;
  maxAttempts: number;
  /** The second stage runs as a job (it is on, and the analysis left it pending). */
  assessPlan: boolean;
  /** The FHIR base a background draft of this analysis goes to, or undefined (see writeback/background.ts). */
  draftBase: (subject: string) => string | undefined;
  log: Logger;
  onQueued?: () => void;
}

/**
 * What the replica that stored an analysis queues after it. A failure to queue fails the analysis job (it is
 * retried, and its retry queues them without examining again): nothing accepted is lost.
 */
export function queueFollowUps(s: FollowUpSettings): FollowUps {
  return async (analysis, payload) => {
    let queued = false;
    if (s.assessPlan && analysis.result.assessPlanStage?.status === 'pending') {
      queued = (await s.queue.enqueue(assessPlanJobKey(analysis.id), assessPlanJob(analysis.id, payload), { maxAttempts: s.maxAttempts })).queued || queued;
    }
    const base = s.draftBase(analysis.subject);
    if (base) {
      const draft: DraftJobPayload = { v: 1, kind: 'draft-writeback', analysisId: analysis.id, fhirBase: base };
      queued = (await s.queue.enqueue(draftJobKey(base, analysis.id), draft, { maxAttempts: s.maxAttempts })).queued || queued;
    }
    if (queued) {
      s.log.info({ analysis: analysis.id, assessPlan: s.assessPlan, draft: Boolean(base) }, 'follow-up jobs queued');
      s.onQueued?.();
    }
  };
}
