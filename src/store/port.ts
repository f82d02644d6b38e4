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

/** Namespaces of short-lived keyed records (SMART launch state, app sessions). */
export type KeyedNamespace = 'smart-launch' | 'smart-session';

export interface SweepResult {
  analyses: number;
  replay: number;
  keyed: number;
}

export interface VolmoStore {
  readonly kind: 'memory' | 'sqlite' | 'postgres';
  /** Survives a restart (false for memory). */
  readonly durable: boolean;
  readonly analyses: AnalysisStore;
  readonly feedback: FeedbackSink;
  readonly replay: ReplayCache;
  readonly marks: MarkStore;
  keyed<T>(namespace: KeyedNamespace): KeyedStore<T>;
  /** Deletes what is past retention, at most `batch` rows per kind (a periodic, bounded sweep). */
  sweep(opts?: { now?: number; batch?: number }): Promise<SweepResult>;
  close(): Promise<void>;
}

export interface RetentionPolicy {
  /** How long a finished analysis (result and draft) is kept after it finished. */
  analysisMs: number;
}

/** Most live records per keyed namespace (as the in-memory stores): a flood cannot grow the table without bound. */
export const MAX_KEYED_ENTRIES = 10_000;
