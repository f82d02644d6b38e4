import { describe, expect, it } from 'vitest';
import {
  argmax, candidateProbabilities, checkPositions, classifyBatch, decode, firstStep, generate, prefill, stopReason,
} from '../../src/model/runtime/generate.js';
import { stepFeeds } from '../../src/model/runtime/decoder-feeds.js';
import { concatSeq, stackLeftPadded, PastKv } from '../../src/model/runtime/kv.js';
import { checkFeeds } from '../../src/model/runtime/onnx-session.js';
import { InferenceCancelledError } from '../../src/model/runtime/cancel.js';
import { FAKE_SPEC, fakeSession, referenceNext } from './runtime-fake-session.js';

const STOP = { stopIds: [7], maxNewTokens: 20 };

function naiveGreedy(prompt: number[], opts: { stopIds: number[]; maxNewTokens: number }): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  for (;;) {
    const t = referenceNext(seq);
    out.push(t);
    seq.push(t);
    if (opts.stopIds.includes(t) || out.length >= opts.maxNewTokens) return out;
  }
}

describe('stop conditions and probabilities (pure)', () => {
  it('stops on a stop id before the length limit, then on the limit', () => {
    expect(stopReason(7, 1, STOP)).toBe('stop_token');
    expect(stopReason(3, 20, STOP)).toBe('max_new_tokens');
    expect(stopReason(3, 19, STOP)).toBeNull();
  });

  it('candidate probabilities are the full-vocab softmax at those ids and sum to <= 1', () => {
    const logits = Float32Array.from([1, 3, -2, 0.5, 2.5]);
    const z = [...logits].reduce((a, v) => a + Math.exp(v), 0);
    const p = candidateProbabilities(logits, [1, 4]);
    expect(p[0]).toBeCloseTo(Math.exp(3) / z, 6);
    expect(p[1]).toBeCloseTo(Math.exp(2.5) / z, 6);
    expect(p[0] + p[1]).toBeLessThan(1);
    expect(candidateProbabilities(logits, [0, 1, 2, 3, 4]).reduce((a, b) => a + b)).toBeCloseTo(1, 6);
    expect(argmax(logits)).toBe(1);
  });

  it('lays out left-padded rows with positions counting valid tokens only', () => {
    const f = stepFeeds([{ prefixLen: 3, pastLen: 0, ids: [5, 6] }, { prefixLen: 1, pastLen: 0, ids: [9] }], 0);
    expect(f.input_ids.dims).toEqual([2, 2]);
    expect([...f.input_ids.data].map(Number)).toEqual([5, 6, 0, 9]);
    expect([...f.position_ids.data].map(Number)).toEqual([3, 4, 0, 1]);
    expect([...f.attention_mask.data].map(Number)).toEqual([1, 1, 1, 1, 1, 0, 0, 1, 0, 1]);
  });

  it('widens an empty prefix to masked positions (the one-zero-position prefix fed off the CPU provider)', () => {
    const f = stepFeeds([{ prefixLen: 0, pastLen: 0, ids: [5, 6] }], 0, 1);
    expect([...f.position_ids.data].map(Number)).toEqual([0, 1]);
    expect(f.attention_mask.dims).toEqual([1, 3]);
    expect([...f.attention_mask.data].map(Number)).toEqual([0, 1, 1]);
  });

  it('concatenates and stacks KV along the sequence axis', () => {
    const a = { type: 'float32' as const, dims: [1, 2, 1, 2], data: Float32Array.from([1, 2, 3, 4]) };
    const b = { type: 'float32' as const, dims: [1, 2, 2, 2], data: Float32Array.from([5, 6, 7, 8, 9, 10, 11, 12]) };
    expect([...concatSeq(a, b).data]).toEqual([1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12]);
    const s = stackLeftPadded([a, b], 2);
    expect(s.dims).toEqual([2, 2, 2, 2]);
    expect([...s.data]).toEqual([0, 0, 1, 2, 0, 0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('names every missing feed', () => {
    expect(() => checkFeeds(['input_ids', 'past_key.0', 'past_value.0'], { input_ids: 1 })).toThrow(
      /missing inputs: past_key\.0, past_value\.0/,
    );
    expect(() => checkFeeds(['a'], { a: 1, b: 2 })).toThrow(/unknown inputs: b/);
  });
});

describe('split-KV generation on a scripted decoder', () => {
  const prefixIds = [1, 4, 2, 9, 3];
  const questions = [[5, 6], [11, 2, 8], [3]];

  it('gives the tokens of a naive whole-sequence loop for every question while prefilling once', async () => {
    const s = fakeSession();
    const prefix = await prefill(s, FAKE_SPEC, prefixIds);
    for (const q of questions) {
      const got = await generate(s, FAKE_SPEC, prefix, q, STOP);
      const want = naiveGreedy([...prefixIds, ...q], STOP);
      expect(got.tokens).toEqual(want);
      expect(got.stopReason).toBe(want.at(-1) === 7 ? 'stop_token' : 'max_new_tokens');
    }
    expect(s.runs.filter((r) => r.P === 0 && r.G === 0)).toHaveLength(1); // one prefill
    expect(s.runs.every((r) => r.T === 1 || r.G === 0)).toBe(true); // decode steps feed one token
  });

  it('stays within max_position_embeddings under dynamic NTK rope: refuses longer prompts, stops decoding at the limit', async () => {
    const spec = { ...FAKE_SPEC, maxPositions: 9 };
    const s = fakeSession(spec);
    // a prompt of 10 positions: refused before any run, whether prefilled or run whole
    await expect(prefill(s, spec, [...prefixIds, 1, 2, 3, 4, 5])).rejects.toMatchObject({ code: 'bad_request', message: /max_position_embeddings = 9/ });
    const prefix = await prefill(s, spec, prefixIds);
    const runs = s.runs.length;
    await expect(generate(s, spec, prefix, [1, 2, 3, 4, 5], STOP)).rejects.toMatchObject({ code: 'bad_request' });
    expect(s.runs.length).toBe(runs);
    expect(() => checkPositions(spec, 9)).not.toThrow();
    expect(() => checkPositions(FAKE_SPEC, 1e9)).not.toThrow(); // no limit without dynamic scaling
    // 5 + 2 prompt positions; new tokens 1 and 2 run at positions 7 and 8; token 3 is returned, running it needs a 10th
    const got = await generate(s, spec, prefix, [5, 6], { stopIds: [], maxNewTokens: 20 });
    expect(got).toEqual({ tokens: naiveGreedy([...prefixIds, 5, 6], { stopIds: [], maxNewTokens: 3 }), stopReason: 'max_positions' });
    expect(Math.max(...s.runs.map((r) => r.P + r.G + r.T))).toBe(9);
  });

  it('cancels between steps and frees the past KV', async () => {
    const s = fakeSession();
    const prefix = await prefill(s, FAKE_SPEC, prefixIds);
    const { logits, past } = await firstStep(s, FAKE_SPEC, prefix, [5, 6]);
    const ac = new AbortController();
    const origRun = s.run.bind(s);
    let steps = 0;
    s.run = async (f) => {
      if (++steps === 2) ac.abort();
      return origRun(f);
    };
    const p = decode(s, FAKE_SPEC, prefix, past, logits, { stopIds: [], maxNewTokens: 100, signal: ac.signal });
    await expect(p).rejects.toBeInstanceOf(InferenceCancelledError);
    await expect(p).rejects.toMatchObject({ code: 'timeout', reason: 'aborted' });
    expect(past.length).toBe(0);
    expect(steps).toBe(2);
  });

  it('reports a deadline as a timeout', async () => {
    const s = fakeSession();
    const prefix = await prefill(s, FAKE_SPEC, prefixIds);
    const signal = AbortSignal.abort(new DOMException('t', 'TimeoutError'));
    await expect(generate(s, FAKE_SPEC, prefix, [1], { ...STOP, signal })).rejects.toMatchObject({ reason: 'timeout' });
  });

  it('batches single-step questions over different prefixes with left padding, same logits as one by one', async () => {
    const s = fakeSession();
    const p1 = await prefill(s, FAKE_SPEC, prefixIds);
    const p2 = await prefill(s, FAKE_SPEC, [2, 2]);
    const rows = [{ prefix: p1, ids: [5, 6] }, { prefix: p2, ids: [11, 2, 8] }, { prefix: p1, ids: [3] }];
    const batched = await classifyBatch(s, FAKE_SPEC, rows);
    expect(s.runs.at(-1)!.B).toBe(3);
    for (const [i, r] of rows.entries()) {
      const single = (await firstStep(s, FAKE_SPEC, r.prefix, r.ids)).logits;
      expect(argmax(batched[i])).toBe(referenceNext([...(i === 1 ? [2, 2] : prefixIds), ...r.ids]));
      expect([...batched[i]]).toEqual([...single]);
    }
  });

  it('prefills long prefixes in chunks, same answers, and cancels between chunks', async () => {
    const s = fakeSession();
    const chunked = await prefill(s, FAKE_SPEC, prefixIds, undefined, { chunk: 2 });
    expect(s.runs.map((r) => [r.G, r.T])).toEqual([[0, 2], [2, 2], [4, 1]]);
    expect((await generate(s, FAKE_SPEC, chunked, [5, 6], STOP)).tokens).toEqual(naiveGreedy([...prefixIds, 5, 6], STOP));
    const ac = new AbortController();
    const run = s.run.bind(s);
    s.run = async (f) => (ac.abort(), run(f));
    await expect(prefill(s, FAKE_SPEC, prefixIds, undefined, { chunk: 2, signal: ac.signal })).rejects.toBeInstanceOf(InferenceCancelledError);
  });

  it('refuses a prefix used after dispose', async () => {
    const s = fakeSession();
    const prefix = await prefill(s, FAKE_SPEC, prefixIds);
    prefix.dispose();
    await expect(generate(s, FAKE_SPEC, prefix, [1], STOP)).rejects.toThrow(/after dispose/);
    expect(new PastKv(FAKE_SPEC, 1).length).toBe(0);
  });
});
