/**
 * An exam: many questions about the same images. Each question is a full, independent single-turn
 * prompt (as VOLMO evaluates); the longest common prefix of all prompts (system message + images) is
 * prefilled once and reused, so answers equal those of running each prompt alone. Single-step
 * (choice) questions of one or more exams are answered together in batched runs.
 */
import type { ModelSession } from './onnx-session.js';
import {
  candidateProbabilities, argmax, classifyBatch, extendPrefix, generate, prefill, sliceRows, type Decoded, type DecoderSpec, type StopReason,
} from './generate.js';
import { PrefixKv } from './kv.js';
import { countId } from './decoder-feeds.js';
import { throwIfCancelled, type CancelSignal } from './cancel.js';
import type { TensorLike } from './tensor.js';

export interface EncodedQuestion {
  id: string;
  /** Full prompt ids of this question (BOS, system, images, question, assistant header). */
  ids: number[];
  /** For single-step questions: the first token of each allowed answer. */
  candidates?: { label: string; tokenId: number }[];
  maxNewTokens: number;
  /** Text questions: record per-token log-probabilities with this many alternatives. */
  topLogprobs?: number;
}

export interface EncodedExam {
  questions: EncodedQuestion[];
  /** Vision output rows for the image-context tokens, in prompt order (same images in every question). */
  imageEmbeds?: TensorLike;
}

export interface RawAnswer {
  id: string;
  tokens: number[];
  stopReason: StopReason | 'single_step';
  candidates?: { label: string; tokenId: number; probability: number }[];
  /** The candidate with the highest probability. */
  choice?: string;
  /** Whether the unconstrained greedy token is one of the candidates. */
  greedyIsCandidate?: boolean;
  tokenLogprobs?: Decoded['logprobs'];
}

export interface ExamRunOptions {
  stopIds: readonly number[];
  signal?: CancelSignal;
  /** Reuse the common prompt prefix (default true); false re-runs every prompt whole (for benchmarks). */
  prefixReuse?: boolean;
  /** Most rows per batched single-step run, and the most bytes of stacked prefix KV such a run may copy. */
  batchRows?: number;
  batchBytes?: number;
  /** Sees the full-vocabulary logits of every single-step (choice) answer (accuracy measurements). */
  onChoiceLogits?: (exam: number, questionId: string, logits: Float32Array) => void;
}

/** Length of the common prefix of all sequences, leaving at least one token of each for its own run. */
export function sharedPrefixLength(seqs: readonly (readonly number[])[]): number {
  if (seqs.length === 0) return 0;
  let n = Math.min(...seqs.map((s) => s.length)) - 1;
  for (let i = 0; i < n; i++) {
    if (seqs.some((s) => s[i] !== seqs[0][i])) n = i;
  }
  return Math.max(0, n);
}

function rowsOf(t: TensorLike | undefined, start: number, end: number): TensorLike | undefined {
  return t && end > start ? sliceRows(t, start, end) : undefined;
}

function answerFromLogits(q: EncodedQuestion, logits: Float32Array): RawAnswer {
  const cands = q.candidates!;
  const probs = candidateProbabilities(logits, cands.map((c) => c.tokenId));
  const best = probs.indexOf(Math.max(...probs));
  const greedy = argmax(logits);
  return {
    id: q.id,
    tokens: [cands[best].tokenId],
    stopReason: 'single_step',
    candidates: cands.map((c, i) => ({ ...c, probability: probs[i] })),
    choice: cands[best].label,
    greedyIsCandidate: cands.some((c) => c.tokenId === greedy),
  };
}

interface Prepared {
  exam: EncodedExam;
  /** The prefix each question runs against (the exam prefix, or a longer one shared by a group). */
  prefixOf: PrefixKv[];
  /** Every prefix created for this exam (disposed at the end). */
  owned: PrefixKv[];
  rest: TensorLike | undefined;
}

/** Questions sharing at least this many tokens beyond the exam prefix get a longer shared prefix. */
const MIN_GROUP_EXTENSION = 4;

async function prepare(session: ModelSession, spec: DecoderSpec, exam: EncodedExam, reuse: boolean, signal?: CancelSignal): Promise<Prepared> {
  const n = exam.questions.length;
  if (!reuse) {
    const empty = PrefixKv.empty(spec, 1);
    return { exam, prefixOf: new Array(n).fill(empty), owned: [empty], rest: exam.imageEmbeds };
  }
  const p = sharedPrefixLength(exam.questions.map((q) => q.ids));
  const ids = exam.questions[0].ids.slice(0, p);
  const m0 = countId(ids, spec.imgContextId);
  const total = exam.imageEmbeds?.dims[0] ?? 0;
  const prefix = p > 0 ? await prefill(session, spec, ids, rowsOf(exam.imageEmbeds, 0, m0), { signal }) : PrefixKv.empty(spec, 1);
  const prepared: Prepared = { exam, prefixOf: new Array(n).fill(prefix), owned: [prefix], rest: rowsOf(exam.imageEmbeds, m0, total) };
  if (!prepared.rest && !prefix.onDevice) await shareGroupPrefixes(session, spec, prepared, p);
  return prepared;
}

/**
 * Questions that share more than the exam prefix (e.g. the 12 screening questions' common stem) get that
 * longer prefix computed once, so each runs only its own tail.
 */
async function shareGroupPrefixes(session: ModelSession, spec: DecoderSpec, prepared: Prepared, p: number): Promise<void> {
  const groups = new Map<number, number[]>();
  prepared.exam.questions.forEach((q, i) => groups.set(q.ids[p], [...(groups.get(q.ids[p]) ?? []), i]));
  for (const members of groups.values()) {
    if (members.length < 2) continue;
    const seqs = members.map((i) => prepared.exam.questions[i].ids);
    const ext = sharedPrefixLength(seqs) - p;
    if (ext < MIN_GROUP_EXTENSION) continue;
    const longer = await extendPrefix(session, spec, prepared.owned[0], seqs[0].slice(p, p + ext));
    prepared.owned.push(longer);
    for (const i of members) prepared.prefixOf[i] = longer;
  }
}

/** Answers every question of every exam. Frees all KV on return, error or cancel. */
export async function runExams(session: ModelSession, spec: DecoderSpec, exams: readonly EncodedExam[], opts: ExamRunOptions): Promise<RawAnswer[][]> {
  const reuse = opts.prefixReuse ?? true;
  const prepared: Prepared[] = [];
  try {
    for (const exam of exams) {
      throwIfCancelled(opts.signal);
      prepared.push(await prepare(session, spec, exam, reuse, opts.signal));
    }
    const answers = exams.map((e) => new Array<RawAnswer>(e.questions.length));
    await answerChoices(session, spec, prepared, answers, opts);
    for (const [e, p] of prepared.entries()) {
      for (const [i, q] of p.exam.questions.entries()) {
        if (q.candidates) continue;
        throwIfCancelled(opts.signal);
        const prefix = p.prefixOf[i];
        const gen = { maxNewTokens: q.maxNewTokens, stopIds: opts.stopIds, signal: opts.signal, topLogprobs: q.topLogprobs };
        const d = await generate(session, spec, prefix, q.ids.slice(prefix.length), gen, p.rest);
        answers[e][i] = { id: q.id, tokens: d.tokens, stopReason: d.stopReason, ...(d.logprobs ? { tokenLogprobs: d.logprobs } : {}) };
      }
    }
    return answers;
  } finally {
    for (const p of prepared) for (const x of p.owned) x.dispose();
  }
}

async function answerChoices(session: ModelSession, spec: DecoderSpec, prepared: Prepared[], answers: RawAnswer[][], opts: ExamRunOptions) {
  const pending = prepared.flatMap((p, e) =>
    p.exam.questions.flatMap((q, i) => (q.candidates ? [{ e, i, q, p, prefix: p.prefixOf[i], own: q.ids.slice(p.prefixOf[i].length) }] : [])),
  );
  type Row = (typeof pending)[number];
  const maxRows = opts.batchRows ?? 16;
  const maxBytes = opts.batchBytes ?? 64 * 2 ** 20;
  const answerRows = async (chunk: Row[]) => {
    throwIfCancelled(opts.signal);
    const logits = await classifyBatch(session, spec, chunk.map((r) => ({ prefix: r.prefix, ids: r.own, embeds: r.p.rest })));
    chunk.forEach((r, k) => {
      opts.onChoiceLogits?.(r.e, r.q.id, logits[k]);
      answers[r.e][r.i] = answerFromLogits(r.q, logits[k]);
    });
  };
  // Rows that share a prefix run together against it (broadcast, no copy). Rows whose own tokens carry
  // image rows run alone. What is left (one row per prefix, e.g. from several requests) is stacked,
  // which copies each prefix: bounded by rows and bytes; device-resident prefixes cannot be stacked.
  const groups = new Map<PrefixKv, Row[]>();
  const singles: Row[] = [];
  for (const r of pending) {
    if (r.p.rest) await answerRows([r]);
    else groups.set(r.prefix, [...(groups.get(r.prefix) ?? []), r]);
  }
  for (const rows of groups.values()) {
    if (rows.length === 1 && !rows[0].prefix.onDevice) {
      singles.push(rows[0]);
      continue;
    }
    for (let k = 0; k < rows.length; k += maxRows) await answerRows(rows.slice(k, k + maxRows));
  }
  const perToken = spec.layers * 2 * spec.kvHeads * spec.headDim * 4;
  for (let start = 0; start < singles.length; ) {
    let end = start + 1;
    const P = () => Math.max(...singles.slice(start, end + 1).map((r) => r.prefix.length));
    while (end < singles.length && end - start < maxRows && (end + 1 - start) * P() * perToken <= maxBytes) end++;
    await answerRows(singles.slice(start, end));
    start = end;
  }
}
