/**
 * The kinds of work on the one job queue (src/analysis/job-kinds.ts): dispatch by the payload's kind, a kind
 * this replica cannot run ends dead (not retried), the follow-ups an analysis queues, and an analysis job
 * retried after its result was stored queues them without examining again. Memory store; no model runs.
 */
import { describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../../src/analysis/analyse.js';
import { AnalysisCache } from '../../src/analysis/analysis-cache.js';
import { dispatchJob, jobKindOf, jobKindOfKey, queueFollowUps, type AnyJobPayload } from '../../src/analysis/job-kinds.js';
import { JobError } from '../../src/analysis/job-runner.js';
import { classifyAnalysisFailure, runAnalysisJob, type AnalysisJobPayload, type PipelineDeps } from '../../src/analysis/pipeline.js';
import { silentLogger } from '../../src/log.js';
import type { VlmEngine } from '../../src/model/runtime/types.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { ClaimedJob } from '../../src/store/port.js';

const store = () => new MemoryStore({ retention: { analysisMs: 86_400_000 }, log: silentLogger() });
const claimed = <P>(payload: P, over: Partial<ClaimedJob<P>> = {}): ClaimedJob<P> =>
  ({ id: 'j1', key: 'k1', state: 'running', attempts: 1, maxAttempts: 3, runAt: 0, createdAt: 0, updatedAt: 0, claim: 'c', payload, ...over }) as ClaimedJob<P>;
const result = (assessPlan?: 'pending' | 'done') => ({ report: { note: { text: 'x' } }, ...(assessPlan ? { assessPlanStage: { status: assessPlan } } : {}) }) as unknown as AnalysisResult;
const payload = { v: 1, subject: 'https://ehr.example/fhir|Patient/1', patientId: '1', modelSha: 'f'.repeat(64), listed: { references: [], refs: [] }, inline: [] } as unknown as AnalysisJobPayload;

describe('job kinds', () => {
  it('tells kinds apart by payload and by key', () => {
    expect(jobKindOf(payload)).toBe('analysis');
    expect(jobKindOf({ kind: 'assess-plan' })).toBe('assess-plan');
    expect(jobKindOf({ kind: 'draft-writeback' })).toBe('draft-writeback');
    expect(jobKindOf(null)).toBe('analysis');
    expect(jobKindOfKey('ab'.repeat(32))).toBe('analysis');
    expect(jobKindOfKey('assess-plan:a1')).toBe('assess-plan');
    expect(jobKindOfKey('draft-writeback:https://ehr.example/fhir:a1')).toBe('draft-writeback');
  });

  it('dispatches each job to its handler; a kind this replica cannot run is dead at once, not retried', async () => {
    const seen: string[] = [];
    const handle = dispatchJob({
      analysis: async (j) => (seen.push(`analysis:${j.id}`), j.id),
      draft: async (j) => (seen.push(`draft:${j.payload.analysisId}`), j.payload.analysisId),
    });
    expect(await handle(claimed<AnyJobPayload>(payload), new AbortController().signal)).toBe('j1');
    expect(await handle(claimed<AnyJobPayload>({ v: 1, kind: 'draft-writeback', analysisId: 'a9', fhirBase: 'https://ehr.example/fhir' }), new AbortController().signal)).toBe('a9');
    expect(seen).toEqual(['analysis:j1', 'draft:a9']);
    const off = await handle(claimed<AnyJobPayload>({ ...payload, kind: 'assess-plan', analysisId: 'a9' } as AnyJobPayload), new AbortController().signal).catch((e: unknown) => e);
    expect(off).toBeInstanceOf(JobError);
    expect(classifyAnalysisFailure(off)).toEqual({ errorKind: 'assess_plan_off', retryable: false, holdMs: 60_000 });
  });

  it('queues the second stage only while it is pending, the draft only for a base that gets one; one job per key', async () => {
    const s = store();
    let pokes = 0;
    const follow = (assessPlan: boolean, draftBase: (subject: string) => string | undefined) =>
      queueFollowUps({ queue: s.jobs, maxAttempts: 3, assessPlan, draftBase, log: silentLogger(), onQueued: () => pokes++ });
    await follow(true, () => undefined)({ id: 'a1', subject: payload.subject, result: result('done') }, payload);
    await follow(false, () => undefined)({ id: 'a1', subject: payload.subject, result: result('pending') }, payload);
    expect(await s.jobs.list({ limit: 10 })).toEqual([]);
    expect(pokes).toBe(0);
    const both = follow(true, (subject) => subject.split('|')[0]);
    await both({ id: 'a2', subject: payload.subject, result: result('pending') }, payload);
    await both({ id: 'a2', subject: payload.subject, result: result('pending') }, payload);
    expect((await s.jobs.list({ limit: 10 })).map((j) => j.key).sort()).toEqual(['assess-plan:a2', 'draft-writeback:https://ehr.example/fhir:a2']);
    expect(pokes).toBe(1);
    const claimedJob = await s.jobs.claim<{ kind: string; analysisId: string; listed?: unknown }>(10_000);
    expect(claimedJob?.payload).toMatchObject({ analysisId: 'a2' });
  });

  it('an analysis job retried after its result was stored queues its follow-ups and does not examine again', async () => {
    const s = store();
    const engine = { info: { manifestSha256: 'f'.repeat(64) }, exam: async () => { throw new Error('must not run'); } } as unknown as VlmEngine;
    const analyses = new AnalysisCache({ ttlMs: 60_000, maxEntries: 10 });
    await s.analyses.save({ id: 'j1', key: 'k1', subject: payload.subject, references: [], modelSha: 'f'.repeat(64), startedAt: Date.now(), finishedAt: Date.now(), result: result('pending') });
    const followed: string[] = [];
    const deps = { log: silentLogger(), engine, analyses } as unknown as PipelineDeps;
    const id = await runAnalysisJob(deps, claimed(payload, { attempts: 2 }), { store: s.analyses, fhirFor: () => undefined, signal: new AbortController().signal, followUps: async (a) => void followed.push(a.id) });
    expect(id).toBe('j1');
    expect(followed).toEqual(['j1']);
    expect(analyses.get('j1')).toBeDefined();
  });
});
