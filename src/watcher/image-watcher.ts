/**
 * Analyses start when images arrive, not when a chart opens: sources (DICOMweb QIDO-RS polling of a PACS,
 * FHIR `_lastUpdated` polling) name patients with new eye images since their high-water mark; each patient
 * is analysed ahead of any hook through the same pipeline a hook uses (analysis/pipeline.ts), so the first
 * hook finds the finished analysis. Bounded concurrency, exponential backoff on errors, marks persisted.
 */
import type { Logger } from '../log.js';

export interface WatchBatch {
  /** FHIR ids of patients with new eye images. */
  patients: readonly string[];
  /** The source's new high-water mark (opaque to the watcher), saved once the batch is queued. */
  mark?: string;
}

export interface WatchSource {
  /** Stable name: the key of its high-water mark. */
  readonly name: string;
  poll(mark: string | undefined, signal: AbortSignal): Promise<WatchBatch>;
}

export interface MarkStore {
  get(source: string): Promise<string | undefined>;
  set(source: string, mark: string): Promise<void>;
}

export type PatientOutcome = 'analysed' | 'known' | 'no-images';

export interface WatcherCounters {
  seen(source: string, n: number): void;
  outcome(outcome: PatientOutcome | 'failed'): void;
}

export interface ImageWatcherOptions {
  sources: readonly WatchSource[];
  marks: MarkStore;
  /** Runs (or finds) the analysis of one patient; resolves when it has finished. */
  analysePatient(patientId: string, signal: AbortSignal): Promise<PatientOutcome>;
  log: Logger;
  counters?: WatcherCounters;
  intervalMs: number;
  /** Patients analysed at once (default 1: a CPU host runs one exam at a time anyway). */
  concurrency?: number;
  /** Longest pause after repeated errors (default 10 minutes). */
  maxBackoffMs?: number;
}

export class ImageWatcher {
  private readonly stopping = new AbortController();
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private active = 0;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private idle: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;

  constructor(private readonly opts: ImageWatcherOptions) {}

  /** Polls now and then every `intervalMs` (longer after errors) until `stop()`. */
  start(): void {
    const loop = async () => {
      if (this.stopping.signal.aborted) return;
      const ok = await this.pollOnce();
      this.failures = ok ? 0 : this.failures + 1;
      const delay = ok ? this.opts.intervalMs : Math.min(this.opts.intervalMs * 2 ** this.failures, this.opts.maxBackoffMs ?? 600_000);
      if (!this.stopping.signal.aborted) this.timer = setTimeout(() => void loop(), delay).unref();
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    this.queue.length = 0;
    await this.idle;
  }

  /** One round over every source; true when all of them answered. Patients are queued, not awaited. */
  async pollOnce(): Promise<boolean> {
    let ok = true;
    for (const source of this.opts.sources) {
      try {
        const batch = await source.poll(await this.opts.marks.get(source.name), this.stopping.signal);
        this.opts.counters?.seen(source.name, batch.patients.length);
        for (const p of batch.patients) this.enqueue(p);
        if (batch.mark !== undefined) await this.opts.marks.set(source.name, batch.mark);
      } catch (e) {
        ok = false;
        this.opts.log.warn({ source: source.name, code: (e as { code?: string }).code ?? (e as Error).name }, 'image watcher: poll failed (backing off)');
      }
    }
    return ok;
  }

  /** Resolves when the queue is empty and nothing runs (tests, shutdown). */
  drained(): Promise<void> {
    return this.idle;
  }

  private enqueue(patientId: string): void {
    if (this.queued.has(patientId) || this.stopping.signal.aborted) return;
    this.queued.add(patientId);
    this.queue.push(patientId);
    if (this.active === 0 && this.queue.length === 1) this.idle = new Promise((r) => (this.wake = r));
    this.pump();
  }

  private pump(): void {
    while (this.active < (this.opts.concurrency ?? 1) && this.queue.length > 0) {
      const patientId = this.queue.shift()!;
      this.active++;
      void this.opts
        .analysePatient(patientId, this.stopping.signal)
        .then(
          (outcome) => this.opts.counters?.outcome(outcome),
          (e: unknown) => {
            this.opts.counters?.outcome('failed');
            this.opts.log.warn({ code: (e as { code?: string }).code ?? (e as Error).name }, 'image watcher: analysis ahead of the chart failed');
          },
        )
        .finally(() => {
          this.active--;
          this.queued.delete(patientId);
          this.pump();
          if (this.active === 0 && this.queue.length === 0) this.wake?.();
        });
    }
  }
}
