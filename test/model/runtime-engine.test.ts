import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { createEngine, EngineOverloadedError } from '../../src/model/runtime/engine.js';
import { InferenceCancelledError } from '../../src/model/runtime/cancel.js';
import { ModelLoadError } from '../../src/model/runtime/load-error.js';
import type { ExamInput, VlmEngine } from '../../src/model/runtime/types.js';

const backendModule = new URL('./runtime-fake-backend.ts', import.meta.url).href;
const open: VlmEngine[] = [];
async function engine(script: string, extra: Record<string, unknown> = {}): Promise<VlmEngine> {
  const e = await createEngine({ modelDir: `fake:${script}`, backendModule, log: silentLogger(), ...extra });
  open.push(e);
  return e;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((e) => e.close()));
});

const exam = (n = 3, maxNewTokens = 4): ExamInput => ({
  images: [],
  questions: [
    ...Array.from({ length: n }, (_, i) => ({ id: `c${i}`, text: `condition ${i}?`, answer: { kind: 'choice' as const, candidates: ['TRUE', 'FALSE'] } })),
    { id: 'desc', text: 'describe', answer: { kind: 'text' as const, maxNewTokens } },
  ],
});

describe('inference engine (worker threads)', () => {
  it('answers an exam in a worker and reports model info', async () => {
    const e = await engine('');
    expect(e.info).toMatchObject({ name: 'fake', random: true, executionProvider: 'cpu' });
    const answers = await e.exam(exam());
    expect(answers.map((a) => a.id)).toEqual(['c0', 'c1', 'c2', 'desc']);
    expect(answers[0].stopReason).toBe('single_step');
    expect(answers[0].candidates!.map((c) => c.label)).toEqual(['TRUE', 'FALSE']);
    expect(answers[3].tokenIds).toHaveLength(4);
    expect(e.status()).toMatchObject({ state: 'ready', queued: 0 });
  });

  it('keeps the event loop responsive while the worker is busy', async () => {
    const e = await engine('blockMs=40');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const t0 = Date.now();
    await e.exam(exam(2, 6));
    clearInterval(timer);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThan(200); // many blocking runs happened
    expect(ticks).toBeGreaterThan(elapsed / 10 / 3); // and timers kept firing meanwhile
  });

  it('rejects with a typed overload error when the queue is full', async () => {
    const e = await engine('blockMs=30', { queueLimit: 1, batchRequests: 1 });
    const first = e.exam(exam(1, 2)); // dispatched to the worker
    const second = e.exam(exam(1, 2)); // waits in the queue
    await expect(e.exam(exam(1, 2))).rejects.toBeInstanceOf(EngineOverloadedError);
    await expect(e.exam(exam(1, 2))).rejects.toMatchObject({ code: 'model_unavailable', status: 503 });
    await Promise.all([first, second]);
  });

  it('cancels on timeout, frees the worker, and keeps serving', async () => {
    const e = await engine('blockMs=25', { cancelGraceMs: 2000 });
    const t0 = Date.now();
    const slow = e.exam(exam(1, 200), { timeoutMs: 150 });
    await expect(slow).rejects.toBeInstanceOf(InferenceCancelledError);
    await expect(slow).rejects.toMatchObject({ code: 'timeout', reason: 'timeout' });
    expect(Date.now() - t0).toBeLessThan(1000);
    // The worker stopped decoding at its next step, so the next request is served promptly.
    const t1 = Date.now();
    await e.exam(exam(1, 2));
    expect(Date.now() - t1).toBeLessThan(1500);
  });

  it('cancels on the caller abort signal', async () => {
    const e = await engine('blockMs=20');
    const ac = new AbortController();
    const p = e.exam(exam(1, 100), { signal: ac.signal });
    setTimeout(() => ac.abort(), 60);
    await expect(p).rejects.toMatchObject({ reason: 'aborted' });
  });

  it('batches pending requests so single-step questions share a run', async () => {
    const e = await engine('blockMs=30', { batchRequests: 4 });
    const first = e.exam(exam(1, 1));
    const rest = await Promise.all([e.exam(exam(2, 1)), e.exam(exam(3, 1))]);
    await first;
    // The two queued exams went to the worker as one batch; each exam's choice questions share its prefix and
    // ran as one run of rows against it (the larger exam has 3).
    expect(rest[0][0].text).toMatch(/batch=2 rows=3/);
  });

  it('a model that fails to load rejects with a typed reason and does not crash the process', async () => {
    const err = await createEngine({ modelDir: 'fake:fail', backendModule, log: silentLogger() }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err).toMatchObject({ reason: 'checksum_mismatch', code: 'model_unavailable', file: 'decoder.onnx' });
  });

  it('a worker that dies fails its requests with model_unavailable, then is replaced', async () => {
    const e = await engine('crash');
    await expect(e.exam(exam(1, 1))).rejects.toMatchObject({ code: 'model_unavailable' });
    // While the replacement loads, the engine reports itself unavailable; then ready again.
    expect(e.status().state).toBe('unavailable');
    for (let i = 0; i < 100 && e.status().state !== 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(e.status().state).toBe('ready');
  });

  it('a request made while a dead worker is being replaced waits for the replacement instead of failing', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'volmo-crash-')), 'crash-once');
    writeFileSync(marker, '');
    const e = await engine(`crashOnce=${marker}`);
    await expect(e.exam(exam(1, 1))).rejects.toMatchObject({ code: 'model_unavailable' }); // in flight when it died
    expect(e.status().state).toBe('unavailable');
    const answers = await e.exam(exam(1, 1)); // queued until the replacement has loaded
    expect(answers.map((a) => a.id)).toEqual(['c0', 'desc']);
    expect(e.status().state).toBe('ready');
  });
});
