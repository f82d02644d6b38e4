/**
 * Analyses keyed by what identifies them without downloading a pixel: the subject (EHR + patient), the image
 * references (DICOM UIDs, Media/DocumentReference ids and versions, attachment URLs or hashes), the case-text
 * inputs (the clinical context the prompts use), the model and the task set. A hook call that finds a
 * finished analysis answers at once, with no PACS request and no image decoding; one that finds it running
 * answers "in progress" (or waits a bounded time); otherwise it starts one in the background. Model runs
 * outlive the hook call that started them, and their result is shown on the next hook for the same images
 * and kept for the clinician's review. Pixel content hashes stay inside the analysis as its integrity record.
 * A run that failed is forgotten (the next call retries) unless its error asks for a pause (`retryAfterMs`):
 * images that could not be assessed are not fetched again on every chart open.
 * In memory, entries expire after `ttlMs` and the map is bounded. With a durable store (`durable`, see
 * src/store/), finished analyses are also written there and found there by a later process or another
 * replica (`findOrStart`): a restart does not run the exam again. Running analyses and failure pauses stay
 * in the memory of the process that runs them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { renderCaseText } from '../evidence/case-text.js';
import type { PatientContext } from '../evidence/types.js';
import type { Logger } from '../log.js';
import { AppError } from '../errors.js';
import type { Problem } from '../evidence/types.js';
import type { AnalysisStore, JobInfo, JobQueue } from '../store/port.js';
import type { AnalysisResult } from './analyse.js';
import { NoUsableImages } from './no-usable-images.js';
import { mergeOrders } from './orders.js';

export interface AnalysisEntry {
  /** Stable for the analysis: named by every card about it (extension, SMART link) and the draft's id in the SMART app. */
  id: string;
  /** Whose analysis: `analysisSubject(fhirServer, patientId)` — patient ids are only unique within one EHR. */
  subject: string;
  promise: Promise<AnalysisResult>;
  result?: AnalysisResult;
  startedAt: number;
  /** When this process took a finished analysis from the durable store (its memory lifetime counts from then). */
  loadedAt?: number;
  /** A run that failed with a pause (`PausingError`): kept, and answered from, until `until`. */
  failure?: { error: unknown; until: number };
  /** Queued as a job on the durable store (not running in this process unless this replica claimed it). */
  job?: boolean;
}

/** A job that is dead (its attempts used up, or a failure retrying cannot fix): what a hook shows. */
export class AnalysisJobDead extends AppError {
  constructor(readonly errorKind: string) {
    super('internal', `the background analysis failed (${errorKind})`);
    this.name = 'AnalysisJobDead';
  }
}

/** The failure a dead job stands for (the image problems of "no usable images" come back from its detail). */
export function jobFailure(job: JobInfo): unknown {
  if (job.errorKind === 'no_usable_images') return new NoUsableImages(Array.isArray(job.detail) ? (job.detail as Problem[]) : []);
  return new AnalysisJobDead(job.errorKind ?? 'internal');
}

/** A FHIR base URL in one canonical form: lower-case host, no default port, no trailing slash. */
export function canonicalBaseUrl(url: string): string {
  try {
    return new URL(url).href.replace(/\/+$/, '');
  } catch {
    return url.replace(/\/+$/, '');
  }
}

/** The EHR's FHIR base URL and the patient id: what identifies a patient across EHRs (hook and SMART launch alike). */
export function analysisSubject(fhirServer: string | undefined, patientId: string): string {
  return `${fhirServer ? canonicalBaseUrl(fhirServer) : ''}|Patient/${patientId}`;
}

/**
 * The subject for a hook whose client is bound to no FHIR server it named (or an unsigned call): scoped to
 * that client. It is not a URL, so no SMART launch (keyed by its FHIR base) can ever match it.
 */
export function clientSubject(iss: string | undefined, patientId: string): string {
  return `cds-client:${iss ?? '(unsigned)'}|Patient/${patientId}`;
}

/**
 * The identity of an analysis: subject, image references, the case text as the clinical context renders it
 * (images aside), model and task set. The encounter is not part of it: the same images and history give the
 * same findings whichever visit asks (and an analysis started ahead of any hook has no encounter).
 */
export function analysisKey(subject: string, listed: { references: readonly string[]; context: { patient: PatientContext } }, modelSha: string, taskSet: string): string {
  const caseInputs = renderCaseText(listed.context.patient, { right: [], left: [], unknown: [] });
  return createHash('sha256').update(JSON.stringify([subject, [...listed.references].sort(), caseInputs, modelSha, taskSet])).digest('hex');
}

/** An error that asks the cache to keep the failed run for a while instead of retrying on the next call. */
export interface PausingError {
  readonly retryAfterMs: number;
}

function pauseOf(e: unknown): number {
  const ms = (e as Partial<PausingError> | null)?.retryAfterMs;
  return typeof ms === 'number' && ms > 0 ? ms : 0;
}

export class AnalysisCache {
  private readonly entries = new Map<string, AnalysisEntry>();
  private readonly byId = new Map<string, AnalysisEntry>();

  /** Writes to the durable store still under way (awaited by `flush`). */
  private readonly writes = new Set<Promise<unknown>>();

  constructor(
    private readonly opts: {
      ttlMs: number;
      maxEntries: number;
      now?: () => number;
      durable?: AnalysisStore;
      /** With `durable`: new analyses are queued as jobs here (run by the job runners of every replica). */
      jobs?: { queue: JobQueue; maxAttempts: number; pollMs: number; onQueued?: () => void };
      log?: Logger;
    },
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private age(e: AnalysisEntry): number {
    return this.now() - (e.loadedAt ?? e.startedAt);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.writes.add(p);
    void p.finally(() => this.writes.delete(p)).catch(() => undefined);
    return p;
  }

  /** Waits for the durable writes under way (at shutdown). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.writes]);
  }

  /**
   * Like `getOrStart`, but a finished analysis kept in the durable store (by an earlier process or another
   * replica) is answered first, without running anything; a new run's result is written there before it is
   * shown. A store that cannot be read is logged and treated as empty (the analysis runs here).
   */
  async findOrStart(
    key: string,
    subject: string,
    identity: { references: readonly string[]; modelSha: string },
    run: () => Promise<AnalysisResult>,
    opts: { onStored?: (entry: AnalysisEntry) => void; job?: () => unknown } = {},
  ): Promise<AnalysisEntry> {
    const existing = this.entries.get(key);
    // A queued job may have finished on another replica meanwhile: those are looked up again.
    if (existing && this.live(existing) && !(existing.job && !existing.result && !existing.failure)) return existing;
    const durable = this.opts.durable;
    if (!durable) return this.getOrStart(key, subject, run, opts);
    const found = await durable.findByKey(key).catch((e: unknown) => {
      this.opts.log?.warn({ code: (e as { code?: string }).code, err: e }, 'analysis store could not be read: analysing here');
      return undefined;
    });
    const meanwhile = this.entries.get(key);
    if (meanwhile && this.live(meanwhile) && !meanwhile.job) return meanwhile;
    if (found) return this.adopt(key, subject, found.id, found.startedAt, found.result);
    if (this.opts.jobs && opts.job) return this.enqueue(key, subject, opts.job(), durable, this.opts.jobs);
    return this.getOrStart(key, subject, run, {
      ...opts,
      beforeStored: async (entry, result) => {
        await durable
          .save({ id: entry.id, key, subject, references: identity.references, modelSha: identity.modelSha, startedAt: entry.startedAt, finishedAt: this.now(), result })
          .catch((e: unknown) => this.opts.log?.warn({ analysis: entry.id, code: (e as { code?: string }).code, err: e }, 'analysis could not be written to the store: kept in memory only'));
      },
    });
  }

  /** Keeps a finished analysis (from the store, or finished by this replica's job runner) for later calls here. */
  adopt(key: string, subject: string, id: string, startedAt: number, result: AnalysisResult): AnalysisEntry {
    const current = this.entries.get(key);
    if (current && current.id === id && current.job) {
      current.result = result;
      current.loadedAt = this.now();
      delete current.failure;
      return current;
    }
    if (current) this.byId.delete(current.id);
    this.evict();
    const entry: AnalysisEntry = { id, subject, startedAt, loadedAt: this.now(), result, promise: Promise.resolve(result) };
    this.entries.set(key, entry);
    this.byId.set(id, entry);
    return entry;
  }

  /**
   * Queues the analysis as a job (one per key across replicas; its id is the analysis id cards name) and
   * answers an entry that stands for it: finished or dead when the job already is, else pending. Its
   * `promise` (looked at only by callers that wait) follows the job in the store every `pollMs`.
   */
  private async enqueue(key: string, subject: string, payload: unknown, durable: AnalysisStore, jobs: NonNullable<typeof this.opts.jobs>): Promise<AnalysisEntry> {
    const { job, queued } = await jobs.queue.enqueue(key, payload, { maxAttempts: jobs.maxAttempts });
    if (queued) jobs.onQueued?.();
    if (job.state === 'done' && job.analysisId) {
      const a = await durable.findById(job.analysisId);
      if (a) return this.adopt(key, subject, a.id, a.startedAt, a.result);
    }
    const current = this.entries.get(key);
    if (current && current.id === job.id && current.job && job.state !== 'dead') return current;
    if (current) this.byId.delete(current.id);
    this.evict();
    let promise: Promise<AnalysisResult> | undefined;
    const follow = () => this.follow(key, entry, durable, jobs.queue, jobs.pollMs);
    const entry: AnalysisEntry = {
      id: job.id,
      subject,
      startedAt: job.createdAt,
      job: true,
      get promise() {
        if (!promise) {
          const p = follow();
          promise = p;
          // Observed by waiters; a failed attempt that will be retried is followed anew by the next waiter.
          p.catch(() => {
            if (!entry.failure && promise === p) promise = undefined;
          });
          return p;
        }
        return promise;
      },
    };
    if (job.state === 'dead') entry.failure = { error: jobFailure(job), until: job.runAt };
    this.entries.set(key, entry);
    this.byId.set(entry.id, entry);
    return entry;
  }

  /** Resolves when the job behind `entry` is done (rejects when it is dead or gone), looking every `pollMs`. */
  private async follow(key: string, entry: AnalysisEntry, durable: AnalysisStore, queue: JobQueue, pollMs: number): Promise<AnalysisResult> {
    for (;;) {
      if (entry.result) return entry.result;
      if (entry.failure) throw entry.failure.error;
      if (this.entries.get(key) !== entry) throw new AnalysisJobDead('evicted');
      const job = await queue.get(entry.id);
      if (!job) throw new AnalysisJobDead('gone');
      if (job.state === 'done' && job.analysisId) {
        const a = await durable.findById(job.analysisId);
        if (!a) throw new AnalysisJobDead('gone');
        entry.result = a.result;
        entry.loadedAt = this.now();
        return a.result;
      }
      if (job.state === 'dead') {
        entry.failure = { error: jobFailure(job), until: job.runAt };
        throw entry.failure.error;
      }
      // An attempt failed and the job waits for its retry: a waiter is told it failed (the job itself goes on).
      if (job.state === 'queued' && job.attempts > 0 && job.errorKind) throw new AnalysisJobDead(job.errorKind);
      await new Promise((r) => setTimeout(r, pollMs).unref());
    }
  }

  /**
   * The finished, running or (for a while) failed analysis for `key`, starting `run` when there is none.
   * `onStored` runs once the new entry's result is stored (e.g. to queue a second stage).
   */
  getOrStart(
    key: string,
    subject: string,
    run: () => Promise<AnalysisResult>,
    opts: { onStored?: (entry: AnalysisEntry) => void; beforeStored?: (entry: AnalysisEntry, result: AnalysisResult) => Promise<void> } = {},
  ): AnalysisEntry {
    const existing = this.entries.get(key);
    if (existing && this.live(existing)) return existing;
    this.evict();
    const id = randomUUID();
    const promise = run().then(
      async (r) => {
        if (opts.beforeStored) await this.track(opts.beforeStored(entry, r));
        entry.result = r;
        opts.onStored?.(entry);
        return r;
      },
      (e: unknown) => {
        const pause = pauseOf(e);
        if (pause > 0) entry.failure = { error: e, until: this.now() + pause };
        else if (this.entries.get(key) === entry) {
          this.entries.delete(key);
          this.byId.delete(id);
        }
        throw e;
      },
    );
    const entry: AnalysisEntry = { id, subject, startedAt: this.now(), promise };
    entry.promise.catch(() => {}); // observed by waiters; never an unhandled rejection
    this.entries.set(key, entry);
    this.byId.set(entry.id, entry);
    return entry;
  }

  private live(e: AnalysisEntry): boolean {
    return e.failure ? this.now() < e.failure.until : this.age(e) < this.opts.ttlMs;
  }

  /**
   * Replaces the result of a finished, unexpired analysis in place (a second stage finished): same id, same
   * entry, no new draft. False when it has expired or been evicted meanwhile.
   */
  update(id: string, next: AnalysisResult, opts: { durable?: boolean } = {}): boolean {
    const e = this.byId.get(id);
    if (!e?.result || this.age(e) >= this.opts.ttlMs) return false;
    // Orders named meanwhile (a later hook for the same images) are kept: a second stage built on an older copy does not drop them.
    const orders = mergeOrders(e.result.orders, next.orders);
    const result = orders.length ? { ...next, orders } : next;
    e.result = result;
    const durable = this.opts.durable;
    // `durable: false`: the caller has written it to the store already (a second-stage job).
    if (durable && opts.durable !== false) {
      void this.track(durable.update(id, result)).catch((err: unknown) => this.opts.log?.warn({ analysis: id, code: (err as { code?: string }).code, err }, 'updated analysis could not be written to the store'));
    }
    return true;
  }

  /** A finished analysis by its id (for the clinician's review), while it has not expired. */
  get(id: string): AnalysisResult | undefined {
    const e = this.byId.get(id);
    return e && this.age(e) < this.opts.ttlMs ? e.result : undefined;
  }

  /**
   * A finished, retained analysis by its id with whose it is (`subject`), from this process or the durable
   * store: the SMART app checks it against the launch's patient before showing it.
   */
  async findById(id: string): Promise<{ id: string; subject: string; startedAt: number; result: AnalysisResult } | undefined> {
    const e = this.byId.get(id);
    if (e?.result && this.age(e) < this.opts.ttlMs) return { id: e.id, subject: e.subject, startedAt: e.startedAt, result: e.result };
    const stored = await this.opts.durable?.findById(id).catch((err: unknown) => {
      this.opts.log?.warn({ code: (err as { code?: string }).code, err }, 'analysis store could not be read');
      return undefined;
    });
    return stored ? { id: stored.id, subject: stored.subject, startedAt: stored.startedAt, result: stored.result } : undefined;
  }

  /**
   * Finished, unexpired analyses of `subject` (`analysisSubject(fhirBase, patientId)`), newest first
   * (for the SMART app).
   */
  latestForPatient(subject: string, limit = 3): { id: string; startedAt: number; result: AnalysisResult }[] {
    const found: { id: string; startedAt: number; result: AnalysisResult }[] = [];
    for (const e of this.byId.values()) {
      if (!e.result || this.age(e) >= this.opts.ttlMs) continue;
      if (e.subject === subject) found.push({ id: e.id, startedAt: e.startedAt, result: e.result });
    }
    return found.sort((a, b) => b.startedAt - a.startedAt).slice(0, limit);
  }

  /**
   * `latestForPatient` together with what the durable store keeps for `subject` (analyses finished by an
   * earlier process or another replica), newest first. A store that cannot be read is logged and skipped.
   */
  async recentForSubject(subject: string, limit = 3): Promise<{ id: string; startedAt: number; result: AnalysisResult }[]> {
    const mine = this.latestForPatient(subject, limit);
    const durable = this.opts.durable;
    if (!durable) return mine;
    const stored = await durable.latestForSubject(subject, limit).catch((e: unknown) => {
      this.opts.log?.warn({ code: (e as { code?: string }).code, err: e }, 'analysis store could not be read: showing this process\'s analyses only');
      return [];
    });
    const seen = new Set(mine.map((m) => m.id));
    const merged = [...mine, ...stored.filter((s) => !seen.has(s.id)).map(({ id, startedAt, result }) => ({ id, startedAt, result }))];
    return merged.sort((a, b) => b.startedAt - a.startedAt).slice(0, limit);
  }

  private evict(): void {
    const drop = (k: string) => {
      const e = this.entries.get(k)!;
      this.byId.delete(e.id);
      this.entries.delete(k);
    };
    for (const [k, e] of this.entries) if (!this.live(e)) drop(k);
    while (this.entries.size >= this.opts.maxEntries) drop(this.entries.keys().next().value as string);
  }
}

/** Resolves with the result if it arrives within `ms`, else with undefined; rejects if the run fails in time. */
export async function waitFor<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | undefined> {
  if (signal?.aborted) return undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    onAbort = () => resolve(undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
