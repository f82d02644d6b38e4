/**
 * The storage port: everything the service keeps between requests, behind the small interfaces its
 * components already use (FeedbackSink, ReplayCache, KeyedStore, MarkStore) plus the finished analyses.
 * Implementations: memory (one process, tests), SQLite (embedded default) and PostgreSQL (several
 * replicas); one contract suite (test/store/contract.ts) runs against all of them.
 *
 * What is stored: analyses (the result without image bytes, the image references it was computed from,
 * model and task identity), card feedback, JWT replay records (until exp + skew), SMART launch states
 * and app sessions (tokens), watcher high-water marks. PHI and secrets (analysis results, feedback,
 * launch/session values) are sealed per column with AES-256-GCM (data-key.ts).
 */
import type { AnalysisResult } from '../analysis/analyse.js';
import type { ReplayCache } from '../cds/replay-cache.js';
import type { FeedbackSink } from '../cds/types.js';
import type { MarkStore } from '../watcher/image-watcher.js';
import type { KeyedStore } from '../../launch/ttl-store.js';

export interface StoredAnalysis {
  /** The analysis id cards and the SMART app name. */
  id: string;
  /** analysis-cache.ts `analysisKey`: subject, image references, case inputs, model, task set. */
  key: string;
  /** Whose analysis (`analysisSubject` / `clientSubject`). Stored only as a keyed hash besides the sealed payload. */
  subject: string;
  /** The image references the analysis was computed from (never image bytes). */
  references: readonly string[];
  /** The model build's manifest sha256. */
  modelSha: string;
  startedAt: number;
  finishedAt: number;
  result: AnalysisResult;
}

export interface AnalysisStore {
  /** The finished analysis with this identity, while it is retained. */
  findByKey(key: string): Promise<StoredAnalysis | undefined>;
  findById(id: string): Promise<StoredAnalysis | undefined>;
  /** Stores a finished analysis; one per key (a newer one for the same key replaces the older). */
  save(analysis: StoredAnalysis): Promise<void>;
  /** Replaces the result of a retained analysis (a second stage finished). False when it is gone. */
  update(id: string, result: AnalysisResult): Promise<boolean>;
  /** Retained analyses of `subject`, newest first. */
  latestForSubject(subject: string, limit: number): Promise<StoredAnalysis[]>;
}

/** What a write-back does to the EHR for one analysis (src/writeback). */
export type WritebackAction = 'draft' | 'approve' | 'discard';

/**
 * `pending`: written to the store before the call to the EHR (a crash or timeout leaves it so, and the next
 * attempt reconciles it with the EHR before writing again); `done`: the EHR accepted it; `refused`: the EHR
 * answered 4xx (the clinician saw its reason; a new attempt may start over); `failed`: no usable answer.
 */
export type WritebackState = 'pending' | 'done' | 'refused' | 'failed';

/** An idempotency record: one per (EHR FHIR base, analysis, action). Ids and states only, no PHI, no tokens. */
export interface WritebackRecord {
  /** The idempotency key (src/writeback/keys.ts): a hash of the FHIR base, the analysis id and the action. */
  key: string;
  analysisId: string;
  action: WritebackAction;
  /** The write-back profile that wrote it (`fhir-standard`, `epic`, `oracle`). */
  profile: string;
  state: WritebackState;
  /** What the EHR holds now, as relative references (`DiagnosticReport/123`). */
  resources: string[];
  createdAt: number;
  updatedAt: number;
}

export interface WritebackStore {
  get(key: string): Promise<WritebackRecord | undefined>;
  /**
   * Claims `key` for a write: inserts a `pending` record, or turns a `refused`/`failed` one back into
   * `pending`. False when the key is `pending` (another attempt is under way or was interrupted) or `done`.
   */
  begin(rec: Pick<WritebackRecord, 'key' | 'analysisId' | 'action' | 'profile'>): Promise<boolean>;
  /** Records the outcome of the call (any state; `resources` replaces the list). False when the key is unknown. */
  settle(key: string, state: WritebackState, resources: readonly string[]): Promise<boolean>;
  /** The records of one analysis, oldest first. */
  forAnalysis(analysisId: string): Promise<WritebackRecord[]>;
}

/**
 * One line of the append-only audit trail of writes to an EHR: who, what, when, which analysis, the
 * server's answer. Ids, codes and statuses only: no patient data beyond ids, no tokens, no note text.
 */
export interface AuditEvent {
  at: number;
  /** The clinician (`Practitioner/123`) or `system` for background writes. */
  actor: string;
  /** e.g. `writeback.approve`. */
  action: string;
  analysisId: string;
  profile: string;
  /** scheme://host:port of the EHR's FHIR server (no path, no query). */
  fhirOrigin: string;
  /** `written`, `already-done`, `refused`, `failed`, `nothing-to-write`. */
  outcome: string;
  /** The EHR's HTTP status, when it answered. */
  httpStatus?: number;
  /** Relative references written or found (`DocumentReference/9`). */
  resources: string[];
}

export interface AuditTrail {
  append(event: AuditEvent): Promise<void>;
  /** Oldest first, from `since` (epoch ms, inclusive), optionally for one analysis. */
  list(opts: { since?: number; analysisId?: string; limit: number }): Promise<AuditEvent[]>;
}

/** Namespaces of short-lived keyed records (SMART launch state, app sessions). */
export type KeyedNamespace = 'smart-launch' | 'smart-session' | 'smart-browser';

export interface SweepResult {
  analyses: number;
  replay: number;
  keyed: number;
  /** Finished (done or dead) jobs past the analysis retention. */
  jobs: number;
}

/**
 * A job's life: `queued` (waiting, or waiting out a retry's backoff until `runAt`) -> `running` (claimed by
 * one worker under a lease it renews) -> `done` (linked to the stored analysis) or, after the last attempt or
 * a failure that retrying cannot fix, `dead` (with an error kind, never a message: messages can hold PHI).
 * A running job whose lease ran out (its worker died) is claimed again; that counts as an attempt.
 */
export type JobState = 'queued' | 'running' | 'done' | 'dead';
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'done', 'dead'];

export interface JobInfo {
  id: string;
  /** The identity of the work (for analyses: analysis-cache.ts `analysisKey`): one job per key. */
  key: string;
  state: JobState;
  /** Claims so far (a claim after an expired lease counts). */
  attempts: number;
  maxAttempts: number;
  /** queued: not claimed before; dead: a new enqueue of the same key may revive it from then on. */
  runAt: number;
  /** running: the lease's end. */
  leaseUntil?: number;
  createdAt: number;
  updatedAt: number;
  /** done: the stored analysis. */
  analysisId?: string;
  /** The last failure's kind (an error code such as `upstream_timeout`, `no_usable_images`, `worker_lost`). */
  errorKind?: string;
  /** dead: what the failure leaves to show (e.g. the image problems), sealed at rest. */
  detail?: unknown;
}

export interface ClaimedJob<P = unknown> extends JobInfo {
  /** This claim's token: heartbeat, complete and fail act only while the claim is still this one. */
  claim: string;
  payload: P;
}

export interface EnqueueResult {
  job: JobInfo;
  /** A new job was queued (or a finished one queued again) by this call. */
  queued: boolean;
}

export interface JobQueue {
  /**
   * One job per key. No job yet: queued. Queued: its payload is replaced by this one (fresher access), and a
   * job waiting out a retry's backoff is due now (the next request retries).
   * Running: left alone. Done: left alone while its analysis is retained, else queued again. Dead: left
   * alone until its `runAt` (the hold after the failure), then queued again with fresh attempts.
   */
  enqueue<P>(key: string, payload: P, opts?: { maxAttempts?: number }): Promise<EnqueueResult>;
  /** The oldest job ready to run (queued and due, or running with an expired lease), now running under `leaseMs`. */
  claim<P>(leaseMs: number): Promise<ClaimedJob<P> | undefined>;
  /** Renews the lease; false when the claim was lost (the lease ran out and another worker claimed the job). */
  heartbeat(job: Pick<ClaimedJob, 'id' | 'claim'>, leaseMs: number): Promise<boolean>;
  /** Done, linked to `analysisId`; its payload (access, clinical context) is dropped. False when the claim was lost. */
  complete(job: Pick<ClaimedJob, 'id' | 'claim'>, analysisId: string): Promise<boolean>;
  /**
   * A failed attempt: queued again after `backoffMs * 2^(attempts-1)` (at most 30 minutes) while `retryable`
   * and attempts remain, else dead (held `holdMs` before an enqueue may revive it); the payload is dropped
   * when dead. 'lost' when the claim was lost.
   */
  fail(job: Pick<ClaimedJob, 'id' | 'claim' | 'attempts' | 'maxAttempts'>, failure: { errorKind: string; retryable: boolean; backoffMs: number; holdMs: number; detail?: unknown }): Promise<JobState | 'lost'>;
  get(id: string): Promise<JobInfo | undefined>;
  findByKey(key: string): Promise<JobInfo | undefined>;
  /** Jobs in `state` (all when absent), most recently updated first. */
  list(opts: { state?: JobState; limit: number }): Promise<JobInfo[]>;
  counts(): Promise<Record<JobState, number>>;
}

/** Exponential backoff before retry `attempts` + 1, capped. */
export function backoffFor(attempts: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempts - 1), 30 * 60_000);
}

/** Default attempts per job (a claim after a dead worker's lease counts). */
export const DEFAULT_JOB_MAX_ATTEMPTS = 3;

export interface VolmoStore {
  readonly kind: 'memory' | 'sqlite' | 'postgres';
  /** Survives a restart (false for memory). */
  readonly durable: boolean;
  readonly analyses: AnalysisStore;
  readonly feedback: FeedbackSink;
  readonly replay: ReplayCache;
  readonly marks: MarkStore;
  /** Background work (analyses), claimed by the runners of every replica on this store. */
  readonly jobs: JobQueue;
  readonly writeback: WritebackStore;
  /** Append-only: nothing in the service updates or deletes it (the retention sweep leaves it alone). */
  readonly audit: AuditTrail;
  keyed<T>(namespace: KeyedNamespace): KeyedStore<T>;
  /** Deletes what is past retention, at most `batch` rows per kind (a periodic, bounded sweep). */
  sweep(opts?: { now?: number; batch?: number }): Promise<SweepResult>;
  close(): Promise<void>;
}

export interface RetentionPolicy {
  /**
   * How long a finished analysis (result and draft) is kept: from when it finished, or from when its draft was
   * filed (write-back `approve` done) or discarded (`discard` done), whichever ends later.
   */
  analysisMs: number;
}

/** Most live records per keyed namespace (as the in-memory stores): a flood cannot grow the table without bound. */
export const MAX_KEYED_ENTRIES = 10_000;
