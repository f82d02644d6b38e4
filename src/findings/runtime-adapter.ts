/**
 * Bridges planned tasks and the model runtime (src/model/runtime/types.ts): TRUE/FALSE and digit tasks
 * are single-step `choice` questions over the task's candidate tokens, free-text tasks are greedy
 * `text` questions. Pure; type-only import of the runtime.
 */
import type { Answer, ModelInfo, Question } from '../model/runtime/types.js';
import type { ConversationTurn, PlannedTask } from './plan.js';
import type { ModelAnswer, ModelIdentity } from './types.js';

/** Free-text budget per task (VOLMO used max_new_tokens=2048 for everything). */
export const MAX_NEW_TOKENS = { describe: 512, 'assess-plan': 1024 } as const;

/** `history`: the earlier turns of a chained task (buildConversation without its last turn). */
export function toRuntimeQuestion(t: PlannedTask, history?: ConversationTurn[]): Question {
  if (t.task.answer === 'free-text') {
    const maxNewTokens = t.task.kind === 'describe' ? MAX_NEW_TOKENS.describe : MAX_NEW_TOKENS['assess-plan'];
    return { id: t.key, text: t.prompt, answer: { kind: 'text', maxNewTokens }, ...(history?.length ? { history } : {}) };
  }
  return { id: t.key, text: t.prompt, answer: { kind: 'choice', candidates: [...(t.task.candidateTokens ?? [])] } };
}

export function fromRuntimeAnswer(a: Answer): ModelAnswer {
  const out: ModelAnswer = { text: a.text };
  if (a.candidates && a.candidates.length > 0) out.candidates = Object.fromEntries(a.candidates.map((c) => [c.label, c.probability]));
  if (a.greedyIsCandidate !== undefined) out.greedyIsCandidate = a.greedyIsCandidate;
  return out;
}

/** Answers keyed by PlannedTask.key, as aggregateFindings expects. */
export function answersById(answers: readonly Answer[]): Record<string, ModelAnswer> {
  return Object.fromEntries(answers.map((a) => [a.id, fromRuntimeAnswer(a)]));
}

/** The runtime's ModelInfo as the identity recorded in reports (Device, note header, random label). */
export function modelIdentity(info: ModelInfo): ModelIdentity {
  return { name: info.name, version: info.version, manifestSha256: info.manifestSha256, executionProvider: info.executionProvider, random: info.random };
}
