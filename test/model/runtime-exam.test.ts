import { describe, expect, it } from 'vitest';
import { runExams, sharedPrefixLength, type EncodedExam } from '../../src/model/runtime/exam.js';
import { FAKE_SPEC, fakeSession, referenceNext } from './runtime-fake-session.js';

const sys = [1, 3, 3, 5, 2, 8];
const choice = (id: string, q: number[], pre = sys) => {
  const next = referenceNext([...pre, ...q]);
  const candidates = [{ label: 'A', tokenId: (next + 1) % 16 }, { label: 'B', tokenId: (next + 2) % 16 }, { label: 'C', tokenId: next }];
  return { id, ids: [...pre, ...q], maxNewTokens: 1, candidates };
};
const exams: EncodedExam[] = [
  { questions: [choice('q1', [6, 1]), { id: 'free', ids: [...sys, 2, 2, 2], maxNewTokens: 6 }, choice('q2', [11])] },
  { questions: [choice('x', [5], [9, 9]), choice('y', [1, 1, 1], [9, 9])] },
];

describe('exam orchestration', () => {
  it('finds the shared prefix and leaves every prompt at least one token', () => {
    expect(sharedPrefixLength([[1, 2, 3, 4], [1, 2, 3, 5]])).toBe(3);
    expect(sharedPrefixLength([[1, 2, 3], [1, 2, 3]])).toBe(2);
    expect(sharedPrefixLength([[1, 2, 3]])).toBe(2);
    expect(sharedPrefixLength([[7], [1, 2]])).toBe(0);
  });

  it('answers the same with and without prefix reuse, with fewer runs and batched single-step questions', async () => {
    const withReuse = fakeSession();
    const a = await runExams(withReuse, FAKE_SPEC, exams, { stopIds: [7] });
    const noReuse = fakeSession();
    const b = await runExams(noReuse, FAKE_SPEC, exams, { stopIds: [7], prefixReuse: false, batchRows: 1 });
    expect(a).toEqual(b);
    // Choice answers: the candidate whose token is the greedy next token wins, with probabilities < 1 in sum.
    for (const ans of a.flat().filter((x) => x.candidates)) {
      expect(ans.choice).toBe('C');
      expect(ans.greedyIsCandidate).toBe(true);
      const sum = ans.candidates!.reduce((s, c) => s + c.probability, 0);
      expect(sum).toBeLessThanOrEqual(1);
      expect(ans.candidates![2].probability).toBeGreaterThan(ans.candidates![0].probability);
    }
    const free = a[0][1];
    expect(free.stopReason).not.toBe('single_step');
    expect(free.tokens[0]).toBe(referenceNext([...sys, 2, 2, 2]));
    // Each exam's two choice questions go in one run against their shared prefix, fed once (batch 1, broadcast).
    expect(withReuse.runs.filter((r) => r.B === 2 && r.PB === 1 && r.P > 0)).toHaveLength(2);
    expect(withReuse.runs.filter((r) => r.P === 0).length).toBe(2); // one prefill per exam
    expect(noReuse.runs.every((r) => r.B === 1)).toBe(true);
  });

  it('shows every choice answer\'s full logits to onChoiceLogits (exam index, question id), and nothing for text answers', async () => {
    const seen: { e: number; id: string; argmax: number }[] = [];
    const a = await runExams(fakeSession(), FAKE_SPEC, exams, {
      stopIds: [7],
      onChoiceLogits: (e, id, logits) => seen.push({ e, id, argmax: logits.indexOf(Math.max(...logits)) }),
    });
    expect(seen.map((x) => `${x.e}:${x.id}`).sort()).toEqual(['0:q1', '0:q2', '1:x', '1:y']);
    // the logits are those the answer came from: their argmax is the winning candidate 'C' (the greedy token)
    for (const x of seen) {
      const ans = a[x.e].find((q) => q.id === x.id)!;
      expect(x.argmax).toBe(ans.candidates!.find((c) => c.label === 'C')!.tokenId);
    }
  });

  it('gives questions sharing a stem beyond the exam prefix that longer prefix, with unchanged answers', async () => {
    const stem = [4, 4, 4, 4, 4];
    const stemmed: EncodedExam[] = [{ questions: [choice('s1', [...stem, 1]), choice('s2', [...stem, 2, 9]), choice('other', [8]), { id: 'free', ids: [...sys, ...stem, 3], maxNewTokens: 5 }] }];
    const s = fakeSession();
    const a = await runExams(s, FAKE_SPEC, stemmed, { stopIds: [7] });
    const b = await runExams(fakeSession(), FAKE_SPEC, stemmed, { stopIds: [7], prefixReuse: false });
    expect(a).toEqual(b);
    // One run extends the exam prefix by the stem; the stemmed questions then run only their own tails.
    expect(s.runs.some((r) => r.P === sys.length && r.T === stem.length)).toBe(true);
    expect(s.runs.some((r) => r.P === sys.length + stem.length && r.T === 1 && r.G === 0)).toBe(true);
  });

  it('stacks one-question-per-prefix rows of several exams, within the batch byte cap', async () => {
    const singles: EncodedExam[] = [{ questions: [choice('a', [6, 1])] }, { questions: [choice('b', [5], [9, 9, 9])] }];
    const stacked = fakeSession();
    const a = await runExams(stacked, FAKE_SPEC, singles, { stopIds: [7] });
    expect(stacked.runs.some((r) => r.B === 2 && r.PB === 2)).toBe(true); // both prefixes copied into one batch
    const capped = fakeSession();
    const b = await runExams(capped, FAKE_SPEC, singles, { stopIds: [7], batchBytes: 1 });
    expect(capped.runs.every((r) => r.B === 1)).toBe(true);
    expect(a).toEqual(b);
  });

  it('stops at cancel before work starts', async () => {
    const s = fakeSession();
    await expect(runExams(s, FAKE_SPEC, exams, { stopIds: [7], signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'timeout' });
    expect(s.runs).toHaveLength(0);
  });
});
