/**
 * Greedy generation over the split-KV decoder: prefill a prefix once, then per question one run over
 * the question tokens (logits at the answer position) and, unless a single step is enough, a decode
 * loop of one-token runs until a stop id, maxNewTokens, or abort.
 */
import { AppError } from '../../errors.js';
import type { ModelSession } from './onnx-session.js';
import { concatSeq, PastKv, PrefixKv, presentsOf, stackLeftPadded, type KvGeometry, type LayerNamer } from './kv.js';
import { countId, stepFeeds, type FeedRow } from './decoder-feeds.js';
import { rowOf, type FeedValue, type TensorLike } from './tensor.js';
import { throwIfCancelled, type CancelSignal } from './cancel.js';

export interface DecoderSpec extends KvGeometry {
  vocab: number;
  hidden: number;
  padId: number;
  imgContextId: number;
  name: LayerNamer;
  /**
   * Longest sequence (prompt + generated tokens) the graph computes exactly as the official code: its plain RoPE
   * equals InternLM2's dynamic-NTK rope only up to max_position_embeddings. Undefined: no limit (no scaling).
   */
  maxPositions?: number;
}

/** A sequence would pass the positions where the graph's rope equals the official one (400, no partial answer). */
export function checkPositions(spec: Pick<DecoderSpec, 'maxPositions'>, length: number): void {
  if (spec.maxPositions === undefined || length <= spec.maxPositions) return;
  throw new AppError(
    'bad_request',
    `the sequence needs ${length} positions but this model is exact only up to max_position_embeddings = ${spec.maxPositions} ` +
      '(dynamic NTK rope scaling beyond it is not implemented): use fewer or smaller images, a shorter question or fewer new tokens',
  );
}

/** `max_positions`: the next token would pass `DecoderSpec.maxPositions`; the tokens so far are exact. */
export type StopReason = 'stop_token' | 'max_new_tokens' | 'max_positions';

export interface GenerateOptions {
  maxNewTokens: number;
  stopIds: readonly number[];
  signal?: CancelSignal;
  /** Record each token's log-probability and this many likeliest alternatives. */
  topLogprobs?: number;
}

/** Pure: why decoding stops after `token` was produced as the `count`-th new token, or null. */
export function stopReason(token: number, count: number, opts: Pick<GenerateOptions, 'maxNewTokens' | 'stopIds'>): StopReason | null {
  if (opts.stopIds.includes(token)) return 'stop_token';
  if (count >= opts.maxNewTokens) return 'max_new_tokens';
  return null;
}

export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Softmax over the whole vocabulary, reported for `ids` only (so the values sum to <= 1). */
export function candidateProbabilities(logits: Float32Array, ids: readonly number[]): number[] {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return ids.map((id) => Math.exp(logits[id] - max) / sum);
}

/**
 * `image_embeds` for a run. Prompt runs must bring one row per image-context token. Generated tokens
 * never take image rows: a decode step feeds none (the graph then embeds the id as text).
 */
function imageFeed(spec: DecoderSpec, embeds: TensorLike | undefined, m: number, generated: boolean): TensorLike {
  if (m === 0 || generated) return { type: 'float32', dims: [0, spec.hidden], data: new Float32Array(0) };
  if (!embeds || embeds.dims[0] !== m) {
    throw new AppError('internal', `prompt has ${m} image-context tokens but ${embeds?.dims[0] ?? 0} image embedding rows were given`);
  }
  return embeds;
}

/**
 * onnxruntime's WebGPU provider (1.30) crashes the process on a MatMul whose inner dimension is 0, which an
 * empty prefix gives the prefix half of the decoder's attention. Off the CPU provider an empty prefix is
 * therefore fed as one zero position that the attention mask removes (exactly: its softmax weight is 0).
 */
function maskedPrefix(spec: DecoderSpec): PrefixKv {
  const zeros = () => Array.from({ length: spec.layers }, () => ({
    type: 'float32' as const, dims: [1, spec.kvHeads, 1, spec.headDim], data: new Float32Array(spec.kvHeads * spec.headDim),
  }));
  return new PrefixKv(spec, 1, 1, { keys: zeros(), values: zeros() });
}

/** One decoder run; returns per-row last-position logits and the run's present KV. */
async function run(
  session: ModelSession, spec: DecoderSpec, rows: FeedRow[], prefix: PrefixKv, past: PastKv, embeds?: TensorLike, generated = false,
  outputsOnDevice = false,
) {
  for (const r of rows) checkPositions(spec, r.prefixLen + r.pastLen + r.ids.length);
  const m = rows.reduce((n, r) => n + countId(r.ids, spec.imgContextId), 0);
  const padPrefix = prefix.length === 0 && session.executionProvider !== 'cpu';
  const feeds: Record<string, FeedValue> = {
    ...stepFeeds(rows, spec.padId, padPrefix ? 1 : 0),
    ...(padPrefix ? maskedPrefix(spec) : prefix).feeds(spec.name),
    ...past.feeds(spec.name),
  };
  if (session.inputNames.includes('image_embeds')) feeds.image_embeds = imageFeed(spec, embeds, m, generated);
  const out = await session.run(feeds, outputsOnDevice ? { outputsOnDevice } : undefined);
  const logits = out.logits as TensorLike;
  return { logits: rows.map((_, b) => rowOf(logits, b)), presents: presentsOf(out, spec, spec.name) };
}

/**
 * Runs the prefix (system prompt + images) once; the result is shared read-only by many questions.
 * Long prefixes run in chunks of `chunk` tokens (attention scores of one run are T×(P+T) per head).
 * A one-chunk prefix keeps the run's outputs as they are (device-resident on WebGPU).
 */
export async function prefill(
  session: ModelSession, spec: DecoderSpec, ids: readonly number[], embeds?: TensorLike,
  opts: { chunk?: number; signal?: CancelSignal } = {},
): Promise<PrefixKv> {
  const chunk = opts.chunk ?? 2048;
  checkPositions(spec, ids.length);
  const empty = PrefixKv.empty(spec, 1);
  if (ids.length <= chunk) {
    const r = await run(session, spec, [{ prefixLen: 0, pastLen: 0, ids }], empty, new PastKv(spec, 1), embeds, false, true);
    return new PrefixKv(spec, 1, ids.length, r.presents);
  }
  const acc = new PastKv(spec, 1);
  let row = 0;
  for (let start = 0; start < ids.length; start += chunk) {
    throwIfCancelled(opts.signal);
    const part = ids.slice(start, start + chunk);
    const m = countId(part, spec.imgContextId);
    const rows = embeds && m ? sliceRows(embeds, row, row + m) : undefined;
    row += m;
    const r = await run(session, spec, [{ prefixLen: 0, pastLen: acc.length, ids: part }], empty, acc, rows);
    await acc.append(r.presents);
  }
  return acc.toPrefix();
}

/** The prefix followed by `ids` as a new prefix: one run over `ids`, then their KV appended to a copy (host prefixes). */
export async function extendPrefix(session: ModelSession, spec: DecoderSpec, prefix: PrefixKv, ids: readonly number[]): Promise<PrefixKv> {
  const base = prefix.plain();
  const ext = (await firstStep(session, spec, prefix, ids)).past.toPrefix().plain();
  const keys = base.keys.map((k, i) => concatSeq(k, ext.keys[i]));
  const values = base.values.map((v, i) => concatSeq(v, ext.values[i]));
  return new PrefixKv(spec, 1, prefix.length + ids.length, { keys, values });
}

/** Rows [start, end) of a [N, W] tensor, as a view. */
export function sliceRows(t: TensorLike, start: number, end: number): TensorLike {
  const w = t.dims[1];
  return { type: t.type, dims: [end - start, w], data: (t.data as Float32Array).subarray(start * w, end * w) };
}

/** Runs a question's tokens after the prefix: logits at the answer position and the past KV. */
export async function firstStep(session: ModelSession, spec: DecoderSpec, prefix: PrefixKv, ids: readonly number[], embeds?: TensorLike) {
  const past = new PastKv(spec, 1);
  const r = await run(session, spec, [{ prefixLen: prefix.length, pastLen: 0, ids }], prefix, past, embeds);
  await past.append(r.presents);
  return { logits: r.logits[0], past };
}

export interface Decoded {
  tokens: number[];
  stopReason: StopReason;
  logprobs?: { tokenId: number; logprob: number; top: { tokenId: number; logprob: number }[] }[];
}

/** Log-softmax of `token` and of the `k` highest logits (ties: lower id first). */
export function tokenLogprobs(logits: Float32Array, token: number, k: number): { tokenId: number; logprob: number; top: { tokenId: number; logprob: number }[] } {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const logZ = max + Math.log(sum);
  const top: number[] = [];
  for (let i = 0; i < logits.length && k > 0; i++) {
    if (top.length === k && logits[i] <= logits[top[k - 1]]) continue;
    let j = top.length < k ? top.length : k - 1;
    top[j] = i;
    while (j > 0 && logits[top[j - 1]] < logits[i]) {
      top[j] = top[j - 1];
      top[--j] = i;
    }
  }
  return { tokenId: token, logprob: logits[token] - logZ, top: top.map((id) => ({ tokenId: id, logprob: logits[id] - logZ })) };
}

/** Greedy decode from the answer-position logits. Frees `past` on every exit, abort included. */
export async function decode(
  session: ModelSession, spec: DecoderSpec, prefix: PrefixKv, past: PastKv, logits: Float32Array, opts: GenerateOptions,
): Promise<Decoded> {
  const tokens: number[] = [];
  const logprobs: NonNullable<Decoded['logprobs']> | undefined = opts.topLogprobs === undefined ? undefined : [];
  try {
    for (;;) {
      const token = argmax(logits);
      tokens.push(token);
      logprobs?.push(tokenLogprobs(logits, token, opts.topLogprobs!));
      const full = spec.maxPositions !== undefined && prefix.length + past.length + 1 > spec.maxPositions;
      const reason = stopReason(token, tokens.length, opts) ?? (full ? 'max_positions' : null);
      if (reason) return { tokens, stopReason: reason, ...(logprobs ? { logprobs } : {}) };
      throwIfCancelled(opts.signal);
      const row = { prefixLen: prefix.length, pastLen: past.length, ids: [token] };
      const r = await run(session, spec, [row], prefix, past, undefined, true);
      await past.append(r.presents);
      logits = r.logits[0];
    }
  } finally {
    past.dispose();
  }
}

/** Greedy answer to one question: `questionIds` are its tokens after the prefix. */
export async function generate(
  session: ModelSession, spec: DecoderSpec, prefix: PrefixKv, questionIds: readonly number[], opts: GenerateOptions, embeds?: TensorLike,
): Promise<Decoded> {
  throwIfCancelled(opts.signal);
  const { logits, past } = await firstStep(session, spec, prefix, questionIds, embeds);
  return decode(session, spec, prefix, past, logits, opts);
}

export interface ClassifyRow {
  prefix: PrefixKv;
  ids: readonly number[];
  /** Image rows for image-context ids among `ids` (a row that carries them runs alone). */
  embeds?: TensorLike;
}

/**
 * Answer-position logits of several single-step questions in one run. Rows that all share one prefix object
 * feed it once (batch 1): the decoder broadcasts it over the rows and nothing is copied, so this works for
 * device-resident prefixes too. Rows with different prefixes (host only) are stacked with left padding, which
 * copies each row's prefix.
 */
export async function classifyBatch(session: ModelSession, spec: DecoderSpec, rows: readonly ClassifyRow[]): Promise<Float32Array[]> {
  if (rows.length > 1 && rows.some((r) => r.embeds)) throw new AppError('internal', 'classifyBatch: rows with image rows run alone');
  if (rows.length === 1) {
    const one = await firstStep(session, spec, rows[0].prefix, rows[0].ids, rows[0].embeds);
    one.past.dispose();
    return [one.logits];
  }
  const shared = rows.every((r) => r.prefix === rows[0].prefix);
  const P = Math.max(...rows.map((r) => r.prefix.length));
  let prefix = rows[0].prefix;
  if (!shared) {
    const plains = rows.map((r) => r.prefix.plain());
    const keys = Array.from({ length: spec.layers }, (_, i) => stackLeftPadded(plains.map((p) => p.keys[i]), P));
    const values = Array.from({ length: spec.layers }, (_, i) => stackLeftPadded(plains.map((p) => p.values[i]), P));
    prefix = new PrefixKv(spec, rows.length, P, { keys, values });
  }
  try {
    const feedRows = rows.map((r) => ({ prefixLen: r.prefix.length, pastLen: 0, ids: r.ids }));
    const r = await run(session, spec, feedRows, prefix, new PastKv(spec, rows.length));
    return r.logits.map((l) => l.slice());
  } finally {
    if (!shared) prefix.dispose();
  }
}
