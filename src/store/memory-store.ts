/**
 * The store in process memory (`VOLMO_DATABASE_URL=memory:`): tests and throw-away runs. Nothing survives
 * a restart; everything is bounded. The same contract suite as the durable stores runs against it.
 */
import type { AnalysisResult } from '../analysis/analyse.js';
import { MemoryFeedbackSink } from '../cds/feedback-log.js';
import { MemoryReplayCache } from '../cds/replay-cache.js';
import type { Logger } from '../log.js';
import type { MarkStore } from '../watcher/image-watcher.js';
import { MemoryKeyedStore, type KeyedStore } from '../../launch/ttl-store.js';
import { MAX_KEYED_ENTRIES, type AnalysisStore, type AuditEvent, type AuditTrail, type WritebackRecord, type WritebackStore, type KeyedNamespace, type RetentionPolicy, type StoredAnalysis, type SweepResult, type VolmoStore } from './port.js';
import { storableJson } from './sql-store.js';

class MemoryAnalysisStore implements AnalysisStore {
  private readonly byId = new Map<string, StoredAnalysis>();
  private readonly idByKey = new Map<string, string>();

  constructor(private readonly retention: RetentionPolicy, private readonly now: () => number, private readonly maxEntries: number) {}

  private live(a: StoredAnalysis | undefined): StoredAnalysis | undefined {
    return a && a.finishedAt + this.retention.analysisMs > this.now() ? a : undefined;
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
    if (old !== undefined) this.byId.delete(old);
    if (this.byId.size >= this.maxEntries) this.sweep(this.now(), this.maxEntries);
    while (this.byId.size >= this.maxEntries) {
      const oldest = this.byId.values().next().value as StoredAnalysis;
      this.byId.delete(oldest.id);
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
      if (a.finishedAt + this.retention.analysisMs <= now) {
        this.byId.delete(a.id);
        this.idByKey.delete(a.key);
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
  constructor(private readonly now: () => number, private readonly maxEntries = 10_000) {}
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
    this.records.set(key, { ...old, state, resources: [...resources], updatedAt: this.now() });
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
  readonly writeback: MemoryWriteback;
  readonly audit = new MemoryAudit();
  private readonly keyedStores = new Map<KeyedNamespace, MemoryKeyedStore<unknown>>();
  private readonly now: () => number;

  constructor(opts: { retention: RetentionPolicy; log: Logger; now?: () => number; maxAnalyses?: number }) {
    this.now = opts.now ?? Date.now;
    this.analyses = new MemoryAnalysisStore(opts.retention, this.now, opts.maxAnalyses ?? 1000);
    this.feedback = new MemoryFeedbackSink(opts.log, 10_000, () => new Date(this.now()));
    this.replay = new MemoryReplayCache(this.now);
    this.writeback = new MemoryWriteback(this.now);
  }

  keyed<T>(ns: KeyedNamespace): KeyedStore<T> {
    let s = this.keyedStores.get(ns);
    if (!s) this.keyedStores.set(ns, (s = new MemoryKeyedStore<unknown>({ maxEntries: MAX_KEYED_ENTRIES, now: this.now })));
    return s as KeyedStore<T>;
  }

  async sweep(opts: { now?: number; batch?: number } = {}): Promise<SweepResult> {
    // Replay records and keyed values expire by themselves in memory (checked on access, swept when full).
    return { analyses: this.analyses.sweep(opts.now ?? this.now(), opts.batch ?? 1000), replay: 0, keyed: 0 };
  }

  async close(): Promise<void> {}
}
