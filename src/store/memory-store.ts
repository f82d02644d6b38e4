/**
 * The store in process memory (`VOLMO_DATABASE_URL=memory:`): tests and throw-away runs. Nothing survives
 * a restart; everything is bounded. The same contract suite as the durable stores runs against it.
 */
import { randomUUID } from 'node:crypto';
import type { AnalysisResult } from '../analysis/analyse.js';
import { MemoryFeedbackSink } from '../cds/feedback-log.js';
import { MemoryReplayCache } from '../cds/replay-cache.js';
import type { Logger } from '../log.js';
import type { MarkStore } from '../watcher/image-watcher.js';
import { MemoryKeyedStore, type KeyedStore } from '../../launch/ttl-store.js';
import { type AnalysisStore, type AuditEvent, type AuditTrail, backoffFor, type ClaimedJob, DEFAULT_JOB_MAX_ATTEMPTS, type EnqueueResult, JOB_STATES, type JobInfo, type JobQueue, type JobState, type KeyedNamespace, MAX_KEYED_ENTRIES, type RetentionPolicy, type StoredAnalysis, type SweepResult, type VolmoStore, type WritebackRecord, type WritebackStore } from './port.js';
import { storableJson } from './sql-store.js';

class MemoryAnalysisStore implements AnalysisStore {
  private readonly byId = new Map<string, StoredAnalysis>();
  private readonly idByKey = new Map<string, string>();
  /** Later ends of retention: an analysis whose draft was filed or discarded is kept for the retention from then. */
  private readonly keptUntil = new Map<string, number>();

  constructor(private readonly retention: RetentionPolicy, private readonly now: () => number, private readonly maxEntries: number) {}

  private expiresAt(a: StoredAnalysis): number {
    return Math.max(a.finishedAt + this.retention.analysisMs, this.keptUntil.get(a.id) ?? 0);
  }

  private live(a: StoredAnalysis | undefined): StoredAnalysis | undefined {
    return a && this.expiresAt(a) > this.now() ? a : undefined;
  }

  /** The draft of `id` was filed or discarded at `at`: kept for the retention from then (never shortened). */
  retainFrom(id: string, at: number): void {
    const a = this.live(this.byId.get(id));
    if (a) this.keptUntil.set(id, Math.max(this.expiresAt(a), at + this.retention.analysisMs));
  }

  async findByKey(key: string): Promise<StoredAnalysis | undefined> {
    const id = this.idByKey.get(key);
    return id === undefined ? undefined : this.live(this.byId.get(id));
  }

  async findById(id: string): Promise<StoredAnalysis | undefined> {
    return this.live(this.byId.get(id));
  }

  async save(a: StoredAnalysis): Promise<void> {
    storableJson(a.result); // the same refusal of image bytes as the durable stores
    const old = this.idByKey.get(a.key);
    if (old !== undefined) {
      this.byId.delete(old);
      this.keptUntil.delete(old);
    }
    if (this.byId.size >= this.maxEntries) this.sweep(this.now(), this.maxEntries);
    while (this.byId.size >= this.maxEntries) {
      const oldest = this.byId.values().next().value as StoredAnalysis;
      this.byId.delete(oldest.id);
      this.keptUntil.delete(oldest.id);
      this.idByKey.delete(oldest.key);
    }
    this.byId.set(a.id, { ...a, references: [...a.references] });
    this.idByKey.set(a.key, a.id);
  }

  async update(id: string, result: AnalysisResult): Promise<boolean> {
    const a = this.live(this.byId.get(id));
    if (!a) return false;
    this.byId.set(id, { ...a, result });
    return true;
  }

  async latestForSubject(subject: string, limit: number): Promise<StoredAnalysis[]> {
    return [...this.byId.values()].filter((a) => a.subject === subject && this.live(a)).sort((a, b) => b.startedAt - a.startedAt).slice(0, limit);
  }

  sweep(now: number, batch: number): number {
    let n = 0;
    for (const a of this.byId.values()) {
      if (n >= batch) break;
      if (this.expiresAt(a) <= now) {
        this.byId.delete(a.id);
        this.keptUntil.delete(a.id);
        this.idByKey.delete(a.key);
        n++;
      }
    }
    return n;
  }
}

interface MemoryJob extends JobInfo {
  claim?: string;
  payload?: unknown;
}

/** The job queue in memory: the same semantics as the SQL one (one process, so no locking is needed). */
class MemoryJobQueue implements JobQueue {
  private readonly byId = new Map<string, MemoryJob>();
  private readonly idByKey = new Map<string, string>();

  constructor(
    private readonly now: () => number,
    private readonly analysisRetained: (id: string) => Promise<boolean>,
    private readonly maxEntries: number,
  ) {}

  private info(j: MemoryJob): JobInfo {
    const { claim: _c, payload: _p, ...info } = j;
    return structuredClone(info);
  }

  async enqueue<P>(key: string, payload: P, opts: { maxAttempts?: number } = {}): Promise<EnqueueResult> {
    storableJson(payload);
    const t = this.now();
    const max = opts.maxAttempts ?? DEFAULT_JOB_MAX_ATTEMPTS;
    const id = this.idByKey.get(key);
    const j = id === undefined ? undefined : this.byId.get(id);
    if (!j) {
      if (this.byId.size >= this.maxEntries) this.sweep(Number.POSITIVE_INFINITY, this.maxEntries - this.byId.size + 1);
      const job: MemoryJob = { id: randomUUID(), key, state: 'queued', attempts: 0, maxAttempts: max, runAt: t, createdAt: t, updatedAt: t, payload: structuredClone(payload) };
      this.byId.set(job.id, job);
      this.idByKey.set(key, job.id);
      return { job: this.info(job), queued: true };
    }
    if (j.state === 'queued') {
      j.payload = structuredClone(payload);
      j.updatedAt = t;
      j.runAt = Math.min(j.runAt, t);
      return { job: this.info(j), queued: false };
    }
    const revive = (j.state === 'dead' && j.runAt <= t) || (j.state === 'done' && !(j.analysisId && (await this.analysisRetained(j.analysisId))));
    if (!revive) return { job: this.info(j), queued: false };
    Object.assign(j, { state: 'queued', attempts: 0, maxAttempts: max, runAt: t, updatedAt: t, payload: structuredClone(payload) });
    for (const k of ['leaseUntil', 'claim', 'analysisId', 'errorKind', 'detail'] as const) delete j[k];
    return { job: this.info(j), queued: true };
  }

  async claim<P>(leaseMs: number): Promise<ClaimedJob<P> | undefined> {
    const t = this.now();
    let pick: MemoryJob | undefined;
    for (const j of this.byId.values()) {
      if (j.state === 'running' && j.leaseUntil! <= t && j.attempts >= j.maxAttempts) {
        Object.assign(j, { state: 'dead', errorKind: 'worker_lost', runAt: t, updatedAt: t });
        delete j.leaseUntil;
        delete j.claim;
        delete j.payload;
        continue;
      }
      const ready = (j.state === 'queued' && j.runAt <= t) || (j.state === 'running' && j.leaseUntil! <= t);
      if (ready && (!pick || j.runAt < pick.runAt || (j.runAt === pick.runAt && j.createdAt < pick.createdAt))) pick = j;
    }
    if (!pick) return undefined;
    Object.assign(pick, { state: 'running', attempts: pick.attempts + 1, claim: randomUUID(), leaseUntil: t + leaseMs, updatedAt: t });
    return { ...this.info(pick), claim: pick.claim!, payload: structuredClone(pick.payload) as P };
  }

  private held(job: Pick<ClaimedJob, 'id' | 'claim'>): MemoryJob | undefined {
    const j = this.byId.get(job.id);
    return j && j.state === 'running' && j.claim === job.claim ? j : undefined;
  }

  async heartbeat(job: Pick<ClaimedJob, 'id' | 'claim'>, leaseMs: number): Promise<boolean> {
    const j = this.held(job);
    if (!j) return false;
    j.leaseUntil = this.now() + leaseMs;
    j.updatedAt = this.now();
    return true;
  }

  async complete(job: Pick<ClaimedJob, 'id' | 'claim'>, analysisId: string): Promise<boolean> {
    const j = this.held(job);
    if (!j) return false;
    Object.assign(j, { state: 'done', analysisId, updatedAt: this.now() });
    for (const k of ['leaseUntil', 'claim', 'errorKind', 'payload'] as const) delete j[k];
    return true;
  }

  async fail(job: Pick<ClaimedJob, 'id' | 'claim' | 'attempts' | 'maxAttempts'>, f: { errorKind: string; retryable: boolean; backoffMs: number; holdMs: number; detail?: unknown }): Promise<JobState | 'lost'> {
    const j = this.held(job);
    if (!j) return 'lost';
    const t = this.now();
    const retry = f.retryable && job.attempts < job.maxAttempts;
    delete j.leaseUntil;
    delete j.claim;
    if (retry) Object.assign(j, { state: 'queued', runAt: t + backoffFor(job.attempts, f.backoffMs), errorKind: f.errorKind, updatedAt: t });
    else {
      Object.assign(j, { state: 'dead', runAt: t + f.holdMs, errorKind: f.errorKind, updatedAt: t });
      delete j.payload;
      if (f.detail !== undefined) j.detail = structuredClone(f.detail);
    }
    return j.state;
  }

  async get(id: string): Promise<JobInfo | undefined> {
    const j = this.byId.get(id);
    return j && this.info(j);
  }

  async findByKey(key: string): Promise<JobInfo | undefined> {
    const id = this.idByKey.get(key);
    return id === undefined ? undefined : this.get(id);
  }

  async list({ state, limit }: { state?: JobState; limit: number }): Promise<JobInfo[]> {
    return [...this.byId.values()]
      .filter((j) => !state || j.state === state)
      .sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1))
      .slice(0, limit)
      .map((j) => this.info(j));
  }

  async counts(): Promise<Record<JobState, number>> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const j of this.byId.values()) out[j.state]++;
    return out;
  }

  /** Finished (done or dead) jobs last updated at or before `before`. */
  sweep(before: number, batch: number): number {
    let n = 0;
    for (const j of this.byId.values()) {
      if (n >= batch) break;
      if ((j.state === 'done' || j.state === 'dead') && j.updatedAt <= before) {
        this.byId.delete(j.id);
        this.idByKey.delete(j.key);
        n++;
      }
    }
    return n;
  }
}

class MemoryMarks implements MarkStore {
  private readonly marks = new Map<string, string>();
  async get(source: string): Promise<string | undefined> {
    return this.marks.get(source);
  }
  async set(source: string, mark: string): Promise<void> {
    this.marks.set(source, mark);
  }
}

/** Bounded like the rest of the memory store: the oldest records go first when full. */
class MemoryWriteback implements WritebackStore {
  private readonly records = new Map<string, WritebackRecord>();
  constructor(
    private readonly now: () => number,
    /** A filing (approve) or discard reached the EHR: the analysis's retention starts again from then. */
    private readonly onFiledOrDiscarded: (analysisId: string, at: number) => void = () => {},
    private readonly maxEntries = 10_000,
  ) {}
  async get(key: string): Promise<WritebackRecord | undefined> {
    const r = this.records.get(key);
    return r && { ...r, resources: [...r.resources] };
  }
  async begin(rec: Pick<WritebackRecord, 'key' | 'analysisId' | 'action' | 'profile'>): Promise<boolean> {
    const old = this.records.get(rec.key);
    const t = this.now();
    if (old) {
      if (old.state !== 'refused' && old.state !== 'failed') return false;
      this.records.set(rec.key, { ...old, state: 'pending', updatedAt: t });
      return true;
    }
    while (this.records.size >= this.maxEntries) this.records.delete(this.records.keys().next().value as string);
    this.records.set(rec.key, { ...rec, state: 'pending', resources: [], createdAt: t, updatedAt: t });
    return true;
  }
  async settle(key: string, state: WritebackRecord['state'], resources: readonly string[]): Promise<boolean> {
    const old = this.records.get(key);
    if (!old) return false;
    const t = this.now();
    this.records.set(key, { ...old, state, resources: [...resources], updatedAt: t });
    if (state === 'done' && (old.action === 'approve' || old.action === 'discard')) this.onFiledOrDiscarded(old.analysisId, t);
    return true;
  }
  async forAnalysis(analysisId: string): Promise<WritebackRecord[]> {
    return [...this.records.values()].filter((r) => r.analysisId === analysisId).sort((a, b) => a.createdAt - b.createdAt || (a.key < b.key ? -1 : 1)).map((r) => ({ ...r, resources: [...r.resources] }));
  }
}

class MemoryAudit implements AuditTrail {
  private readonly events: AuditEvent[] = [];
  constructor(private readonly maxEntries = 100_000) {}
  async append(e: AuditEvent): Promise<void> {
    if (this.events.length >= this.maxEntries) this.events.shift();
    this.events.push({ ...e, resources: [...e.resources] });
  }
  async list(opts: { since?: number; analysisId?: string; limit: number }): Promise<AuditEvent[]> {
    return this.events
      .map((e, i) => ({ e, i }))
      .filter(({ e }) => e.at >= (opts.since ?? 0) && (opts.analysisId === undefined || e.analysisId === opts.analysisId))
      .sort((a, b) => a.e.at - b.e.at || a.i - b.i)
      .slice(0, opts.limit)
      .map(({ e }) => ({ ...e, resources: [...e.resources] }));
  }
}

export class MemoryStore implements VolmoStore {
  readonly kind = 'memory' as const;
  readonly durable = false;
  readonly analyses: MemoryAnalysisStore;
  readonly feedback: MemoryFeedbackSink;
  readonly replay: MemoryReplayCache;
  readonly marks = new MemoryMarks();
  readonly jobs: MemoryJobQueue;
  private readonly retention: RetentionPolicy;
  readonly writeback: MemoryWriteback;
  readonly audit = new MemoryAudit();
  private readonly keyedStores = new Map<KeyedNamespace, MemoryKeyedStore<unknown>>();
  private readonly now: () => number;

  constructor(opts: { retention: RetentionPolicy; log: Logger; now?: () => number; maxAnalyses?: number }) {
    this.now = opts.now ?? Date.now;
    this.analyses = new MemoryAnalysisStore(opts.retention, this.now, opts.maxAnalyses ?? 1000);
    this.feedback = new MemoryFeedbackSink(opts.log, 10_000, () => new Date(this.now()));
    this.replay = new MemoryReplayCache(this.now);
    this.retention = opts.retention;
    this.jobs = new MemoryJobQueue(this.now, async (id) => (await this.analyses.findById(id)) !== undefined, 10_000);
    this.writeback = new MemoryWriteback(this.now, (id, at) => this.analyses.retainFrom(id, at));
  }

  keyed<T>(ns: KeyedNamespace): KeyedStore<T> {
    let s = this.keyedStores.get(ns);
    if (!s) this.keyedStores.set(ns, (s = new MemoryKeyedStore<unknown>({ maxEntries: MAX_KEYED_ENTRIES, now: this.now })));
    return s as KeyedStore<T>;
  }

  async sweep(opts: { now?: number; batch?: number } = {}): Promise<SweepResult> {
    // Replay records and keyed values expire by themselves in memory (checked on access, swept when full).
    const t = opts.now ?? this.now();
    const batch = opts.batch ?? 1000;
    return { analyses: this.analyses.sweep(t, batch), replay: 0, keyed: 0, jobs: this.jobs.sweep(t - this.retention.analysisMs, batch) };
  }

  async close(): Promise<void> {}
}
