/**
 * A bounded pool of worker threads for the JavaScript pixel loops of the image checks — the DICOM frame
 * conversion (`toEightBit`: a 7000×7000 16-bit frame is 1–2 s) and the gradability metrics
 * (`fundusMetrics`: 30–300 ms on a shared 2-core host) — so they never stall the HTTP event loop. Pixels go
 * to a worker and come back as moved ArrayBuffers, not copies. Small inputs (under `minSamples`) are
 * computed in place: a round trip would cost more than the loop. Workers start on first use, idle ones do
 * not keep the process alive, and a worker that dies fails only its own job (the next job starts a new one).
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { AppError } from '../errors.js';
import { siblingModule, spawnModuleWorker } from '../platform/ts-worker.js';
import { toEightBit, type EightBitPixels, type NativeFrame } from './dicom-pixels.js';
import { fundusMetrics, type FundusMetrics } from './gradability.js';

/** Pixels in flight: `length` bytes at `offset` of a moved ArrayBuffer. */
interface Moved {
  readonly buffer: ArrayBuffer;
  readonly offset: number;
  readonly length: number;
}

type JobSpec =
  | { readonly kind: 'eight-bit'; readonly frame: Omit<NativeFrame, 'bytes'> }
  | { readonly kind: 'metrics'; readonly width: number; readonly height: number; readonly channels: number };

export type PixelJob = Moved & { readonly id: number } & JobSpec;

export type PixelResult =
  | (Moved & { readonly id: number; readonly ok: true; readonly kind: 'eight-bit'; readonly channels: 1 | 3 })
  | { readonly id: number; readonly ok: true; readonly kind: 'metrics'; readonly metrics: FundusMetrics }
  | { readonly id: number; readonly ok: false; readonly message: string };

export interface ConvertOptions {
  /**
   * The caller hands `frame.bytes` over: its whole ArrayBuffer is moved to the worker and is unusable
   * afterwards (zero copy). Otherwise the frame's bytes are copied first.
   */
  readonly transfer?: boolean;
}

/** What prepareImage needs from the pixel loops, wherever they run. */
export interface PixelWork {
  toEightBit(frame: NativeFrame, opts?: ConvertOptions): Promise<EightBitPixels>;
  /** `data` is handed over (moved when it goes to a worker). */
  fundusMetrics(data: Uint8Array, width: number, height: number, channels: number): Promise<FundusMetrics>;
}

export interface PixelWorkerPoolOptions {
  /** Worker threads at most (default: 2, or 1 on a single core). */
  readonly size?: number;
  /** Inputs with fewer samples than this are computed on the calling thread (default 2^19). */
  readonly minSamples?: number;
}

interface Pending {
  job: PixelJob;
  resolve(r: PixelResult & { ok: true }): void;
  reject(e: unknown): void;
}

interface Slot {
  readonly worker: Worker;
  current?: Pending;
}

export const DEFAULT_PIXEL_WORKERS = Math.max(1, Math.min(2, availableParallelism()));

export class PixelWorkerPool implements PixelWork {
  private readonly size: number;
  private readonly minSamples: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: PixelWorkerPoolOptions = {}) {
    this.size = Math.max(1, opts.size ?? DEFAULT_PIXEL_WORKERS);
    this.minSamples = opts.minSamples ?? 1 << 19;
  }

  async toEightBit(frame: NativeFrame, opts: ConvertOptions = {}): Promise<EightBitPixels> {
    if (frame.rows * frame.cols * frame.spp < this.minSamples) return toEightBit(frame);
    const { bytes, ...header } = frame;
    const r = await this.submit({ kind: 'eight-bit', frame: header }, bytes, opts.transfer ?? false);
    if (r.kind !== 'eight-bit') throw new AppError('internal', 'pixel worker answered another job');
    return { data: Buffer.from(r.buffer, r.offset, r.length), channels: r.channels };
  }

  async fundusMetrics(data: Uint8Array, width: number, height: number, channels: number): Promise<FundusMetrics> {
    if (width * height * channels < this.minSamples) return fundusMetrics(data, width, height, channels);
    const r = await this.submit({ kind: 'metrics', width, height, channels }, data, true);
    if (r.kind !== 'metrics') throw new AppError('internal', 'pixel worker answered another job');
    return r.metrics;
  }

  private submit(spec: JobSpec, bytes: Uint8Array, transfer: boolean): Promise<PixelResult & { ok: true }> {
    if (this.closed) return Promise.reject(new AppError('internal', 'pixel workers are closed'));
    const moved = transfer && isMovable(bytes) ? bytes : Uint8Array.prototype.slice.call(bytes);
    const job: PixelJob = { ...spec, id: this.nextId++, buffer: moved.buffer as ArrayBuffer, offset: moved.byteOffset, length: moved.byteLength };
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  /** Stops every worker; frames in flight or queued fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new AppError('internal', 'pixel workers closed'));
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }

  /** Started workers (for tests and metrics). */
  get started(): number {
    return this.slots.length;
  }

  private pump(): void {
    while (this.queue.length) {
      const slot = this.slots.find((s) => !s.current) ?? (this.slots.length < this.size ? this.spawn() : undefined);
      if (!slot) return;
      const p = this.queue.shift()!;
      slot.current = p;
      slot.worker.ref();
      try {
        slot.worker.postMessage(p.job, [p.job.buffer]);
      } catch {
        // An ArrayBuffer that cannot be moved (external memory): send a copy of the frame instead.
        const copy = new Uint8Array(p.job.buffer, p.job.offset, p.job.length).slice();
        p.job = { ...p.job, buffer: copy.buffer, offset: 0 };
        slot.worker.postMessage(p.job, [p.job.buffer]);
      }
    }
  }

  private spawn(): Slot {
    const slot: Slot = { worker: spawnModuleWorker(siblingModule(import.meta.url, 'pixel-worker')) };
    slot.worker.unref();
    const fail = (why: string) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      slot.current?.reject(new AppError('internal', this.closed ? 'pixel workers closed' : `pixel worker failed: ${why}`));
      slot.current = undefined;
      if (!this.closed) this.pump();
    };
    slot.worker.on('message', (r: PixelResult) => {
      const p = slot.current;
      if (!p || p.job.id !== r.id) return;
      slot.current = undefined;
      slot.worker.unref();
      if (r.ok) p.resolve(r);
      else p.reject(new AppError('internal', `pixel work failed: ${r.message.slice(0, 160)}`));
      this.pump();
    });
    slot.worker.on('error', (err) => fail(err.message.slice(0, 160)));
    slot.worker.on('exit', (code) => fail(`exit ${code}`));
    this.slots.push(slot);
    return slot;
  }
}

/** An ArrayBuffer postMessage can move: not shared, and not Node's small-Buffer pool (other Buffers live there). */
function isMovable(bytes: Uint8Array): boolean {
  return bytes.buffer instanceof ArrayBuffer && bytes.buffer.byteLength > Buffer.poolSize;
}

let shared: PixelWorkerPool | undefined;

/** One process-wide pool for callers that do not bring their own (the service wires its own, sized by config). */
export function sharedPixelPool(): PixelWorkerPool {
  shared ??= new PixelWorkerPool();
  return shared;
}
