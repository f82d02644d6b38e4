/**
 * The ONNX backend a worker thread runs: images -> tiles -> vision graph -> image rows; questions ->
 * VOLMO prompts -> token ids; then `runExams` (prefix reuse, batched single-step answers) and text.
 */
import { AppError } from '../../errors.js';
import { buildVolmoPrompt } from '../prompt.js';
import type { BackendOptions, BatchResult, InferenceBackend } from './backend.js';
import { throwIfCancelled, type CancelSignal } from './cancel.js';
import { checkPositions } from './generate.js';
import { runExams, type EncodedExam, type EncodedQuestion, type RawAnswer } from './exam.js';
import { openModelDir, type LoadedModel } from './model-dir.js';
import { tilesForModel } from './images.js';
import type { TensorLike } from './tensor.js';
import type { Answer, ExamInput, ImageTiles, Question } from './types.js';

const DEFAULT_MAX_NEW_TOKENS = 512;
/** Tiles per vision run (bounds activation memory; 7 = one image at VOLMO's settings). */
const VISION_CHUNK = 7;

export async function loadBackend(opts: BackendOptions): Promise<InferenceBackend> {
  const model = await openModelDir(opts.modelDir, opts);
  return {
    info: model.info,
    runBatch: (inputs, signal) => runBatch(model, inputs, signal),
    async close() {
      await model.vision.release();
      await model.decoder.release();
    },
  };
}

async function runBatch(model: LoadedModel, inputs: readonly ExamInput[], signal: CancelSignal): Promise<BatchResult[]> {
  const results: BatchResult[] = new Array(inputs.length);
  const encoded: { index: number; exam: EncodedExam }[] = [];
  for (const [index, input] of inputs.entries()) {
    try {
      throwIfCancelled(signal);
      encoded.push({ index, exam: await encodeExam(model, input, signal) });
    } catch (error) {
      results[index] = { ok: false, error };
    }
  }
  if (encoded.length) {
    const raw = await runExams(model.decoder, model.spec, encoded.map((e) => e.exam), { stopIds: model.manifest.stopIds, signal });
    encoded.forEach((e, k) => (results[e.index] = { ok: true, answers: raw[k].map((a) => toAnswer(model, a)) }));
  }
  return results;
}

function toAnswer(model: LoadedModel, a: RawAnswer): Answer {
  const text = a.choice ?? model.tokenizer.decode(a.tokens, { skipSpecial: true }).trim();
  const piece = (id: number) => model.tokenizer.decode([id], { skipSpecial: false });
  const logprobs = a.tokenLogprobs?.map((l) => ({ tokenId: l.tokenId, token: piece(l.tokenId), logprob: l.logprob, top: l.top.map((t) => ({ tokenId: t.tokenId, token: piece(t.tokenId), logprob: t.logprob })) }));
  return { id: a.id, text, tokenIds: a.tokens, stopReason: a.stopReason, candidates: a.candidates, choice: a.choice, greedyIsCandidate: a.greedyIsCandidate, ...(logprobs ? { logprobs } : {}) };
}

export async function encodeExam(model: Pick<LoadedModel, 'manifest' | 'vision' | 'tokenizer' | 'template' | 'spec'>, input: ExamInput, signal: CancelSignal): Promise<EncodedExam> {
  if (!input.questions.length) throw new AppError('bad_request', 'an exam needs at least one question');
  const images: ImageTiles[] = [];
  for (const img of input.images) images.push(img instanceof Uint8Array ? await tilesForModel(img, model.manifest, input.maxTiles) : img);
  const tileCounts = images.map((i) => i.tileCount);
  const questions = input.questions.map((q) => encodeQuestion(model, q, tileCounts, input.systemMessage));
  // a prompt past the positions the graph computes exactly is refused here, before any vision or decoder run
  for (const q of questions) checkPositions(model.spec, q.ids.length);
  const imageEmbeds = images.length ? await embedImages(model, images, signal) : undefined;
  return { questions, imageEmbeds };
}

function encodeQuestion(model: Pick<LoadedModel, 'manifest' | 'tokenizer' | 'template'>, q: Question, tileCounts: number[], systemMessage?: string): EncodedQuestion {
  const prompt = (text: string) =>
    buildVolmoPrompt({
      template: model.template,
      systemMessage: systemMessage ?? model.manifest.systemMessage,
      question: text,
      tileCounts,
      tokensPerTile: model.manifest.tokensPerTile,
      history: q.history,
    }).text;
  const full = prompt(q.text);
  const ids = model.tokenizer.encode(full);
  if (q.answer.kind === 'text') {
    return { id: q.id, ids, maxNewTokens: q.answer.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS, ...(q.answer.topLogprobs !== undefined ? { topLogprobs: q.answer.topLogprobs } : {}) };
  }
  if (!q.answer.candidates.length) throw new AppError('bad_request', `question ${q.id}: a choice needs candidates`);
  // A candidate's token is the first id the prompt + answer text has beyond the prompt's own ids.
  const candidates = q.answer.candidates.map((label) => {
    const withAnswer = model.tokenizer.encode(full + label);
    const same = ids.every((id, i) => withAnswer[i] === id);
    const tokenId = same ? withAnswer[ids.length] : model.tokenizer.encode(label, { addBos: false })[0];
    if (tokenId === undefined) throw new AppError('bad_request', `question ${q.id}: candidate ${JSON.stringify(label)} has no tokens`);
    return { label, tokenId };
  });
  const distinct = new Set(candidates.map((c) => c.tokenId));
  if (distinct.size !== candidates.length) {
    throw new AppError('bad_request', `question ${q.id}: candidates must start with different tokens (${q.answer.candidates.join(', ')})`);
  }
  return { id: q.id, ids, maxNewTokens: 1, candidates };
}

/** Runs the vision graph over all tiles; returns [tiles*tokensPerTile, hidden] rows in prompt order. */
export async function embedImages(model: Pick<LoadedModel, 'manifest' | 'vision'>, images: ImageTiles[], signal: CancelSignal): Promise<TensorLike> {
  const S = model.manifest.imageSize;
  const tileSize = 3 * S * S;
  const tiles = images.reduce((n, i) => n + i.tileCount, 0);
  const all = new Float32Array(tiles * tileSize);
  let off = 0;
  for (const img of images) {
    if (img.tiles.length !== img.tileCount * tileSize) {
      throw new AppError('bad_request', `preprocessed image has ${img.tiles.length} values, expected ${img.tileCount}×3×${S}×${S}`);
    }
    all.set(img.tiles, off);
    off += img.tiles.length;
  }
  const H = model.manifest.llm.hidden;
  const rowsPerTile = model.manifest.tokensPerTile;
  const out = new Float32Array(tiles * rowsPerTile * H);
  const input = model.manifest.graphs.vision.inputs[0];
  const output = model.manifest.graphs.vision.outputs[0];
  for (let t = 0; t < tiles; t += VISION_CHUNK) {
    throwIfCancelled(signal);
    const n = Math.min(VISION_CHUNK, tiles - t);
    const res = await model.vision.run({ [input]: { type: 'float32', dims: [n, 3, S, S], data: all.subarray(t * tileSize, (t + n) * tileSize) } });
    out.set((res[output] as TensorLike).data as Float32Array, t * rowsPerTile * H);
  }
  return { type: 'float32', dims: [tiles * rowsPerTile, H], data: out };
}
