/**
 * The job runner of one replica: claims jobs from the store's queue (store/port.ts `JobQueue`) at most
 * `concurrency` at a time, renews each claim's lease while its job runs, and records the outcome: done
 * (linked to the stored analysis), queued again after a backoff, or dead. Jobs a dead replica held are
 * claimed again once their lease runs out (the queue decides; the runner just claims). Idle, it polls every
 * `pollMs`; right after a job ends it looks again at once (a backlog drains without waiting).
 */
import type { Logger } from '../log.js';
import type { ClaimedJob, JobQueue, JobState } from '../store/port.js';

export interface JobFailure {
  /** An error code, never a message (messages can hold PHI). */
  errorKind: string;
  retryable: boolean;
  /** dead: how long before a new enqueue of the same key may revive it. */
  holdMs: number;
  /** dead: what the failure leaves to show (sealed at rest). */
  detail?: unknown;
}

/** A failure whose handler already knows what it is (follow-up jobs: write-back, second stage). */
export class JobError extends Error {
  readonly code: string;
  constructor(readonly failure: JobFailure) {
    super(`job failed (${failure.errorKind})`);
    this.name = 'JobError';
    this.code = failure.errorKind;
  }
}

export interface JobRunnerOptions<P> {
  queue: JobQueue;
  /** Runs one job; resolves with the id of the analysis it stored. */
  handle: (job: ClaimedJob<P>, signal: AbortSignal) => Promise<string>;
  /** What a failure is (kind, retryable, hold, detail). */
  classify: (error: unknown) => JobFailure;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  retryBaseMs: number;
  log: Logger;
  /** Counts outcomes (metrics): done, queued (a retry), dead, lost (the lease was lost), claim_failed. */
  onOutcome?: (outcome: JobState | 'lost' | 'claim_failed', errorKind?: string) => void;
}

export class JobRunner<P> {
  private readonly running = new Set<Promise<void>>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private claiming = false;

  constructor(private readonly opts: JobRunnerOptions<P>) {}

  start(): this {
    this.schedule(0);
    return this;
  }

  /** Jobs running in this replica now. */
  get active(): number {
    return this.running.size;
  }

  /** Looks for work now (e.g. right after this replica queued a job). */
  poke(): void {
    if (!this.stopped) this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.fill(), ms);
    this.timer.unref();
  }

  /** Claims until every slot is busy or nothing is ready, then waits `pollMs`. */
  private async fill(): Promise<void> {
    if (this.claiming || this.stopped) return;
    this.claiming = true;
    try {
      while (!this.stopped && this.running.size < this.opts.concurrency) {
        const job = await this.opts.queue.claim<P>(this.opts.leaseMs);
        if (!job || this.stopped) break;
        const run = this.run(job).finally(() => {
          this.running.delete(run);
          this.schedule(0);
        });
        this.running.add(run);
      }
    } catch (e) {
      this.opts.onOutcome?.('claim_failed');
      this.opts.log.warn({ code: (e as { code?: string }).code }, 'job queue could not be read: trying again');
    } finally {
      this.claiming = false;
      this.schedule(this.opts.pollMs);
    }
  }

  private async run(job: ClaimedJob<P>): Promise<void> {
    const { queue, log } = this.opts;
    const abort = new AbortController();
    const beat = setInterval(() => {
      queue.heartbeat(job, this.opts.leaseMs).then(
        (held) => {
          if (!held) {
            log.warn({ job: job.id }, 'job lease lost (another replica claimed it): its result is not recorded here');
            abort.abort();
          }
        },
        (e: unknown) => log.warn({ job: job.id, code: (e as { code?: string }).code }, 'job lease could not be renewed'),
      );
    }, Math.max(200, Math.floor(this.opts.leaseMs / 3)));
    beat.unref();
    log.info({ job: job.id, attempt: job.attempts, of: job.maxAttempts }, 'job claimed');
    try {
      const analysisId = await this.opts.handle(job, abort.signal);
      const done = await queue.complete(job, analysisId);
      this.opts.onOutcome?.(done ? 'done' : 'lost');
      log.info({ job: job.id, analysis: analysisId, recorded: done }, 'job done');
    } catch (e) {
      const f = this.opts.classify(e);
      const state = await queue.fail(job, { ...f, backoffMs: this.opts.retryBaseMs }).catch((err: unknown) => {
        log.warn({ job: job.id, code: (err as { code?: string }).code }, 'job failure could not be recorded: its lease will run out');
        return 'lost' as const;
      });
      this.opts.onOutcome?.(state, f.errorKind);
      (state === 'dead' ? log.error.bind(log) : log.warn.bind(log))({ job: job.id, attempt: job.attempts, errorKind: f.errorKind, state }, state === 'dead' ? 'job dead' : 'job failed');
    } finally {
      clearInterval(beat);
    }
  }

  /** Claims no more; waits at most `graceMs` for the jobs running here (the rest are claimed again by another replica once their lease runs out). */
  async stop(graceMs = 0): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.running.size === 0) return;
    let t: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([...this.running]), new Promise((r) => (t = setTimeout(r, graceMs)))]);
    clearTimeout(t);
  }
}
