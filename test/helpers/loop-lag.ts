/**
 * Event-loop lag while `fn` runs: a 5 ms timer records how late each tick fires. On Linux the main
 * thread's run-queue wait (/proc/thread-self/schedstat: time it was ready but another process had the CPU)
 * is read at each tick too, so `ownMaxMs` is the lag this process caused — its own synchronous work, GC
 * and blocking — without the shared host's scheduling noise; `wallMaxMs` is the raw figure.
 */
import { readFileSync } from 'node:fs';

export interface LoopLag {
  readonly wallMaxMs: number;
  readonly ownMaxMs: number;
  readonly ticks: number;
}

function runQueueWaitMs(): number | undefined {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[1]) / 1e6;
  } catch {
    return undefined;
  }
}

export async function measureLoopLag<T>(fn: () => Promise<T>, intervalMs = 5): Promise<{ lag: LoopLag; result: T }> {
  let wallMaxMs = 0;
  let ownMaxMs = 0;
  let ticks = 0;
  let last = performance.now();
  let lastWait = runQueueWaitMs();
  const timer = setInterval(() => {
    const now = performance.now();
    const wait = runQueueWaitMs();
    const late = Math.max(0, now - last - intervalMs);
    const waited = wait !== undefined && lastWait !== undefined ? wait - lastWait : 0;
    wallMaxMs = Math.max(wallMaxMs, late);
    ownMaxMs = Math.max(ownMaxMs, late - waited);
    ticks++;
    last = now;
    lastWait = wait;
  }, intervalMs);
  try {
    await new Promise((r) => setTimeout(r, 4 * intervalMs));
    const result = await fn();
    return { lag: { wallMaxMs, ownMaxMs, ticks }, result };
  } finally {
    clearInterval(timer);
  }
}
