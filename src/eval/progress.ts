/**
 * Progress of an evaluation on stderr: on a terminal a bar redrawn in place; otherwise (logs, CI) one
 * line every `every` images and at the end. The ETA uses the images run in this session only (images
 * resumed from an earlier run cost nothing).
 */

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** One progress line: bar, count, percentage, ETA (once an image has been run in this session). */
export function progressLine(done: number, total: number, run: number, runMs: number, width = 24): string {
  const frac = total > 0 ? done / total : 1;
  const filled = Math.round(frac * width);
  const eta = run > 0 && done < total ? ` ETA ${formatDuration((runMs / run) * (total - done))}` : '';
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${Math.round(frac * 100)}%${eta}`;
}

export class Progress {
  private done = 0;
  private run = 0;
  private runMs = 0;
  private readonly every: number;

  constructor(
    private readonly total: number,
    private readonly stream: ProgressStream,
    opts: { every?: number } = {},
  ) {
    this.every = Math.max(1, opts.every ?? 10);
  }

  /** One image finished: `ms` it took, or undefined when it was resumed from earlier results. */
  tick(ms?: number): void {
    this.done += 1;
    if (ms !== undefined) {
      this.run += 1;
      this.runMs += ms;
    }
    const line = progressLine(this.done, this.total, this.run, this.runMs);
    if (this.stream.isTTY) this.stream.write(`\r${line}${this.done === this.total ? '\n' : ''}`);
    else if (this.done % this.every === 0 || this.done === this.total) this.stream.write(`${line}\n`);
  }
}
