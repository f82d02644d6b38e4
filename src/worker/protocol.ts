/**
 * The wire format between the service (coordinator) and inference workers: OpenAI-compatible
 * `GET /v1/models` and `POST /v1/chat/completions`, plus VOLMO's extension `POST /v1/volmo/exam`
 * (the engine's ExamInput with images as base64; the same Answer[] as the in-process engine). Both
 * sides validate with these schemas; the coordinator never trusts a worker's answer unchecked.
 */
import { z } from 'zod';
import type { Answer, ExamImage, ExamInput, ModelInfo, Question } from '../model/runtime/types.js';

export const MAX_TOP_LOGPROBS = 20;
export const MAX_QUESTIONS = 64;

const finite = z.number().finite();
const tokenId = z.number().int().min(0);

// ---------------------------------------------------------------- /v1/models

/** VOLMO's extension of an OpenAI model entry: what the TEST MODEL banners and the cache key need. */
export const volmoModelMeta = z.object({
  name: z.string().min(1),
  version: z.string(),
  manifest_sha256: z.string(),
  random: z.boolean(),
  execution_provider: z.enum(['cpu', 'webgpu', 'cuda', 'tensorrt']),
  dtype: z.string(),
  /** The worker serves POST /v1/volmo/exam. */
  exam_endpoint: z.literal(true),
});

export const modelsResponse = z.object({
  object: z.literal('list'),
  data: z
    .array(z.object({ id: z.string().min(1), object: z.literal('model'), created: z.number().optional(), owned_by: z.string().optional(), volmo: volmoModelMeta.optional() }).passthrough())
    .min(1),
});
export type ModelsResponse = z.infer<typeof modelsResponse>;

export function modelsBody(info: ModelInfo): ModelsResponse {
  return {
    object: 'list',
    data: [
      {
        id: info.name,
        object: 'model',
        created: 0,
        owned_by: 'volmo',
        volmo: { name: info.name, version: info.version, manifest_sha256: info.manifestSha256, random: info.random, execution_provider: info.executionProvider, dtype: info.dtype, exam_endpoint: true },
      },
    ],
  };
}

// ---------------------------------------------------------------- /v1/volmo/exam

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
const wireImage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('bytes'), data: base64 }),
  /** Preprocessed tiles: float32 little-endian, [tileCount,3,S,S]. */
  z.object({ type: z.literal('tiles'), tile_count: z.number().int().positive(), data: base64 }),
]);
const answerSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('choice'), candidates: z.array(z.string().min(1).max(200)).min(1).max(32) }),
  z.object({ kind: z.literal('text'), maxNewTokens: z.number().int().min(1).max(4096).optional(), topLogprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).optional() }),
]);
const question = z.object({
  id: z.string().min(1).max(200),
  text: z.string().max(100_000),
  answer: answerSpec,
  history: z.array(z.object({ role: z.enum(['user', 'assistant']), content: z.string().max(100_000) })).max(32).optional(),
});
export const examRequest = z.object({
  images: z.array(wireImage).max(32),
  systemMessage: z.string().max(100_000).optional(),
  maxTiles: z.number().int().min(1).max(12).optional(),
  questions: z.array(question).min(1).max(MAX_QUESTIONS),
  /** The coordinator's time budget for this request (the worker cancels past it). */
  timeout_ms: z.number().int().positive().max(3_600_000).optional(),
});
export type ExamRequest = z.infer<typeof examRequest>;

const topEntry = z.object({ tokenId, token: z.string(), logprob: finite.max(0) });
export const wireAnswer = z.object({
  id: z.string(),
  text: z.string(),
  tokenIds: z.array(tokenId),
  stopReason: z.enum(['stop_token', 'max_new_tokens', 'max_positions', 'single_step']),
  candidates: z.array(z.object({ label: z.string(), tokenId, probability: finite.min(0).max(1) })).optional(),
  choice: z.string().optional(),
  greedyIsCandidate: z.boolean().optional(),
  logprobs: z.array(topEntry.extend({ top: z.array(topEntry).max(MAX_TOP_LOGPROBS) })).optional(),
});
export const examResponse = z.object({
  object: z.literal('volmo.exam'),
  model: z.string(),
  manifest_sha256: z.string(),
  answers: z.array(wireAnswer),
});
export type ExamResponse = z.infer<typeof examResponse>;

export function toWireExam(input: ExamInput, timeoutMs?: number): ExamRequest {
  return {
    images: input.images.map((img) =>
      img instanceof Uint8Array
        ? { type: 'bytes' as const, data: Buffer.from(img.buffer, img.byteOffset, img.byteLength).toString('base64') }
        : { type: 'tiles' as const, tile_count: img.tileCount, data: Buffer.from(img.tiles.buffer, img.tiles.byteOffset, img.tiles.byteLength).toString('base64') },
    ),
    ...(input.systemMessage !== undefined ? { systemMessage: input.systemMessage } : {}),
    ...(input.maxTiles !== undefined ? { maxTiles: input.maxTiles } : {}),
    questions: input.questions.map((q) => ({ ...q })),
    ...(timeoutMs !== undefined ? { timeout_ms: Math.ceil(timeoutMs) } : {}),
  };
}

export function fromWireExam(req: ExamRequest): ExamInput {
  const images: ExamImage[] = req.images.map((img) => {
    const buf = Buffer.from(img.data, 'base64');
    if (img.type === 'bytes') return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    if (buf.byteLength % 4 !== 0) throw new Error('tiles data is not float32');
    const tiles = new Float32Array(buf.byteLength / 4);
    for (let i = 0; i < tiles.length; i++) tiles[i] = buf.readFloatLE(i * 4);
    return { tiles, tileCount: img.tile_count };
  });
  return {
    images,
    ...(req.systemMessage !== undefined ? { systemMessage: req.systemMessage } : {}),
    ...(req.maxTiles !== undefined ? { maxTiles: req.maxTiles } : {}),
    questions: req.questions as Question[],
  };
}

/**
 * Checks that the answers belong to the questions asked: one per question in order, choice answers with
 * exactly the asked candidates (probabilities summing to <= 1) and a choice among them; text answers
 * without candidates. Returns a problem, or undefined.
 */
export function answersMismatch(questions: readonly Question[], answers: readonly Answer[]): string | undefined {
  if (answers.length !== questions.length) return `${answers.length} answers for ${questions.length} questions`;
  for (const [i, q] of questions.entries()) {
    const a = answers[i];
    if (a.id !== q.id) return `answer ${i} is for another question`;
    if (q.answer.kind === 'choice') {
      const labels = a.candidates?.map((c) => c.label) ?? [];
      if (a.stopReason !== 'single_step' || labels.join('\u0000') !== q.answer.candidates.join('\u0000')) return `answer ${i}: candidates differ from the question's`;
      const sum = a.candidates!.reduce((s, c) => s + c.probability, 0);
      if (sum > 1 + 1e-6) return `answer ${i}: candidate probabilities sum to ${sum}`;
      if (a.choice === undefined || !labels.includes(a.choice)) return `answer ${i}: choice is not a candidate`;
      const best = Math.max(...a.candidates!.map((c) => c.probability));
      if (a.candidates!.find((c) => c.label === a.choice)!.probability !== best) return `answer ${i}: choice is not the likeliest candidate`;
    } else {
      if (a.candidates !== undefined || a.choice !== undefined || a.stopReason === 'single_step') return `answer ${i}: a text question got a choice answer`;
      if (q.answer.maxNewTokens !== undefined && a.tokenIds.length > q.answer.maxNewTokens) return `answer ${i}: more tokens than asked`;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- /v1/chat/completions

const textPart = z.object({ type: z.literal('text'), text: z.string().max(100_000) });
const imagePart = z.object({ type: z.literal('image_url'), image_url: z.object({ url: z.string().max(64 * 1024 * 1024), detail: z.string().optional() }) });
const chatMessage = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: z.union([z.string().max(100_000), z.array(textPart).max(16)]) }),
  z.object({ role: z.literal('user'), content: z.union([z.string().max(100_000), z.array(z.union([textPart, imagePart])).max(64)]) }),
  z.object({ role: z.literal('assistant'), content: z.union([z.string().max(100_000), z.array(textPart).max(16)]) }),
]);
export const chatRequest = z.object({
  model: z.string().optional(),
  messages: z.array(chatMessage).min(1).max(64),
  max_tokens: z.number().int().min(1).max(4096).optional(),
  max_completion_tokens: z.number().int().min(1).max(4096).optional(),
  temperature: z.number().optional(),
  top_p: z.number().optional(),
  n: z.number().int().optional(),
  stream: z.boolean().optional(),
  logprobs: z.boolean().optional(),
  top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).optional(),
  /** VOLMO's per-request extension: the worker's maximum tiles per image. */
  max_tiles: z.number().int().min(1).max(12).optional(),
});
export type ChatRequest = z.infer<typeof chatRequest>;

const chatTop = z.object({ token: z.string(), logprob: finite.max(0), bytes: z.array(z.number().int()).nullable().optional() });
export const chatResponse = z.object({
  id: z.string().optional(),
  object: z.literal('chat.completion'),
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        index: z.number().int().optional(),
        message: z.object({ role: z.literal('assistant'), content: z.string().nullable() }).passthrough(),
        finish_reason: z.string().nullable(),
        logprobs: z.object({ content: z.array(chatTop.extend({ top_logprobs: z.array(chatTop) })).nullable() }).nullable().optional(),
      }),
    )
    .min(1),
});
export type ChatResponse = z.infer<typeof chatResponse>;

/** OpenAI's error body shape. */
export function openAiError(status: number, message: string, code?: string): { error: { message: string; type: string; param: null; code: string | null } } {
  const type = status === 401 ? 'authentication_error' : status === 403 ? 'permission_error' : status === 404 ? 'not_found_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return { error: { message, type, param: null, code: code ?? null } };
}
