/**
 * The second stage port: work that runs for an analysis after its first result is stored (VOLMO's own
 * assessment and plan), never delaying that result. In process for now, one job at a time, bounded; a
 * durable queue (issue 11) can implement the same interface.
 */
import type { Logger } from '../log.js';
import type { ExecutionProvider } from '../model/runtime/onnx-session.js';

export interface SecondStage {
  /** Queues `job` for analysis `id`; false when it was refused (queue full, closed, or already queued). */
  enqueue(id: string, job: () => Promise<void>): boolean;
  /** Whether a job for `id` is queued or running. */
  pending(id: string): boolean;
  /** Resolves once nothing is queued or running. */
  idle(): Promise<void>;
  /** Takes no new jobs and drops queued ones that have not started (a running one ends with the engine). */
  close(): Promise<void>;
}

export class InProcessSecondStage implements SecondStage {
  private readonly queued = new Set<string>();
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly opts: { log: Logger; maxQueued?: number }) {}

  enqueue(id: string, job: () => Promise<void>): boolean {
    if (this.closed || this.queued.has(id)) return false;
    if (this.queued.size >= (this.opts.maxQueued ?? 32)) {
      this.opts.log.warn({ queued: this.queued.size }, 'second stage queue full: job dropped (the draft keeps its first-stage content)');
      return false;
    }
    this.queued.add(id);
    this.tail = this.tail.then(async () => {
      try {
        if (!this.closed) await job();
      } catch (e) {
        this.opts.log.warn({ err: e }, 'second stage job failed');
      } finally {
        this.queued.delete(id);
      }
    });
    return true;
  }

  pending(id: string): boolean {
    return this.queued.has(id);
  }

  async idle(): Promise<void> {
    while (this.queued.size > 0) await this.tail;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

const GPU_PROVIDERS: readonly ExecutionProvider[] = ['cuda', 'tensorrt', 'webgpu'];

/** VOLMO_ASSESS_PLAN: `auto` is on when the model runs on a GPU execution provider (after any fallback). */
export function assessPlanEnabled(mode: 'auto' | 'always' | 'never', executionProvider: ExecutionProvider | string): boolean {
  if (mode === 'always') return true;
  if (mode === 'never') return false;
  return (GPU_PROVIDERS as readonly string[]).includes(executionProvider);
}
