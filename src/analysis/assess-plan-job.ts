/**
 * The second stage (VOLMO's own assessment and plan, assess-plan-stage.ts) as a job on the durable queue:
 * queued by the replica that stored the analysis, claimed by any replica (a restart or another replica
 * finishes it), retried with the queue's backoff, visible at /admin/jobs and in volmo_jobs. It carries what
 * the analysis job carried to fetch the images again (references and sealed access, never pixels); the
 * updated result replaces the stored one (same analysis id, no second draft). On the memory store the
 * in-process stage (second-stage.ts) is used instead.
 */
import type { ClaimedJob, AnalysisStore } from '../store/port.js';
import type { FhirClient } from '../fhir/client.js';
import { runAssessPlanStage, type AssessPlanStageDeps } from './assess-plan-stage.js';
import { JobError } from './job-runner.js';
import { refetchEvidence, type AnalysisJobPayload, type JobAccess, type PipelineDeps } from './pipeline.js';

export const ASSESS_PLAN_JOB_KIND = 'assess-plan';

export interface AssessPlanJobPayload extends Omit<AnalysisJobPayload, 'v'> {
  v: 1;
  kind: 'assess-plan';
  analysisId: string;
}

/** One second-stage job per analysis. */
export const assessPlanJobKey = (analysisId: string) => `${ASSESS_PLAN_JOB_KIND}:${analysisId}`;

/** The second-stage job of the analysis `analysisId`, from its analysis job's payload. */
export function assessPlanJob(analysisId: string, p: AnalysisJobPayload): AssessPlanJobPayload {
  return { ...p, v: 1, kind: ASSESS_PLAN_JOB_KIND, analysisId };
}

/**
 * Runs the second stage of the stored analysis: nothing when it is no longer pending (done by an earlier
 * attempt); else the images are fetched again, the five steps run, and the stored result is replaced.
 * Resolves with the analysis id.
 */
export async function runAssessPlanJob(
  deps: Pick<PipelineDeps, 'images' | 'analyses' | 'log'> & { assessPlan: AssessPlanStageDeps },
  job: ClaimedJob<AssessPlanJobPayload>,
  ctx: { store: AnalysisStore; fhirFor: (access: JobAccess | undefined) => FhirClient | undefined; signal: AbortSignal },
): Promise<string> {
  const { analysisId } = job.payload;
  const stored = await ctx.store.findById(analysisId);
  if (!stored) throw new JobError({ errorKind: 'analysis_gone', retryable: false, holdMs: 15 * 60_000 });
  if (stored.result.assessPlanStage?.status !== 'pending') return analysisId;
  const evidence = await refetchEvidence(deps, job.payload, ctx);
  const updated = await runAssessPlanStage(deps.assessPlan, stored.result, evidence);
  if (ctx.signal.aborted) throw Object.assign(new Error('the job lease was lost'), { code: 'lease_lost' });
  if (!(await ctx.store.update(analysisId, updated))) throw new JobError({ errorKind: 'analysis_gone', retryable: false, holdMs: 15 * 60_000 });
  deps.analyses.update(analysisId, updated, { durable: false });
  deps.log.info({ job: job.id, analysis: analysisId, status: updated.assessPlanStage?.status, ms: Math.round(updated.timings.assessPlanMs ?? 0) }, 'assessment-and-plan stage finished (job)');
  return analysisId;
}
