import { describe, expect, it } from 'vitest';
import { aggregateFindings } from '../../src/findings/aggregate.js';
import { DEFAULT_FINDINGS_CONFIG } from '../../src/findings/config.js';
import { planTasks } from '../../src/findings/plan.js';
import { answersById, fromRuntimeAnswer, modelIdentity, toRuntimeQuestion } from '../../src/findings/runtime-adapter.js';
import type { Answer } from '../../src/model/runtime/types.js';
import { DIABETIC, answersFor } from './exam-fixtures.js';

const plan = planTasks(DIABETIC, DEFAULT_FINDINGS_CONFIG);
const byKey = (k: string) => plan.tasks.find((t) => t.key === k)!;

describe('runtime adapter', () => {
  it('TRUE/FALSE and digit tasks are single-step choices; free text is greedy text', () => {
    expect(toRuntimeQuestion(byKey('screening:glaucoma:r1'))).toEqual({
      id: 'screening:glaucoma:r1', text: byKey('screening:glaucoma:r1').prompt, answer: { kind: 'choice', candidates: ['TRUE', 'FALSE'] },
    });
    expect(toRuntimeQuestion(byKey('dr-stage:l1')).answer).toEqual({ kind: 'choice', candidates: ['0', '1', '2', '3', '4'] });
    expect(toRuntimeQuestion(byKey('describe:r1')).answer).toEqual({ kind: 'text', maxNewTokens: 512 });
    expect(toRuntimeQuestion(byKey('assess-plan:2')).answer.kind).toBe('text');
  });

  it('maps candidate scores to probabilities by label', () => {
    const a: Answer = {
      id: 'dr-stage:r1', text: '2', tokenIds: [5], stopReason: 'single_step', choice: '2', greedyIsCandidate: true,
      candidates: ['0', '1', '2', '3', '4'].map((label, i) => ({ label, tokenId: i, probability: [0.05, 0.1, 0.6, 0.1, 0.05][i]! })),
    };
    expect(fromRuntimeAnswer(a)).toEqual({ text: '2', candidates: { '0': 0.05, '1': 0.1, '2': 0.6, '3': 0.1, '4': 0.05 }, greedyIsCandidate: true });
    expect(Object.keys(answersById([a]))).toEqual(['dr-stage:r1']);
  });

  it('a constrained pick the model would not have made is unparseable, not accepted', () => {
    const answers = answersFor(plan, {
      'dr-stage:r1': { text: '3', candidates: { '0': 0.01, '1': 0.01, '2': 0.02, '3': 0.05, '4': 0.01 }, greedyIsCandidate: false },
      'screening:amd:r1': { text: 'TRUE', candidates: { TRUE: 0.2, FALSE: 0.1 }, greedyIsCandidate: false },
    });
    const f = aggregateFindings(DIABETIC, plan, answers, DEFAULT_FINDINGS_CONFIG);
    expect(f.stageResults.find((r) => r.imageId === 'r1')!.answer).toEqual({ kind: 'unparseable', reason: 'not-a-candidate' });
    expect(f.eyes[0]!.drStage.status).toBe('unparseable');
    expect(f.eyes[0]!.screening.find((s) => s.condition === 'amd')!.status).toBe('unparseable');
  });

  it("the runtime's ModelInfo becomes the report's model identity", () => {
    expect(modelIdentity({ name: 'VOLMO-2B', version: '1', random: true, manifestSha256: 'f'.repeat(64), executionProvider: 'cpu', dtype: 'int4' }))
      .toEqual({ name: 'VOLMO-2B', version: '1', random: true, manifestSha256: 'f'.repeat(64), executionProvider: 'cpu' });
  });

  it('a missing answer is reported as no-answer', () => {
    const answers = answersFor(plan);
    delete answers['dr-stage:l1'];
    const f = aggregateFindings(DIABETIC, plan, answers, DEFAULT_FINDINGS_CONFIG);
    expect(f.stageResults.find((r) => r.imageId === 'l1')!.answer).toEqual({ kind: 'unparseable', reason: 'no-answer' });
  });
});
