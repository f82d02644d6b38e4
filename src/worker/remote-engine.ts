/**
 * A VlmEngine whose inference runs on remote workers (VOLMO_INFERENCE=<url>,<url>), through the
 * service's guarded fetch. Round-robin over the workers; each attempt has its own time budget; an
 * attempt that times out, cannot connect, gets a 5xx/429 or an answer that fails validation is retried
 * on the next worker, up to `attempts`, and then the request fails with a RemoteInferenceError. A
 * worker's answer is never repaired or guessed: it passes the schema and matches the questions, or it
 * is refused.
 *
 * Own workers (`volmo worker`, recognised by the `volmo` entry of /v1/models) get whole exams through
 * POST /v1/volmo/exam (prefix reuse, exact answers). Other OpenAI-compatible engines get one
 * /v1/chat/completions request per question; choice probabilities then come from `top_logprobs`.
 */
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { InferenceCancelledError } from '../model/runtime/cancel.js';
import type { Answer, CandidateScore, EngineStatus, ExamInput, GenerateInput, ModelInfo, Question, RunOptions, VlmEngine } from '../model/runtime/types.js';
import { describeOrigin } from '../net/allowlist.js';
import type { GuardedFetch, GuardedResponse } from '../net/guarded-fetch.js';
import { NetError } from '../net/net-error.js';
import { answersMismatch, chatResponse, examResponse, MAX_TOP_LOGPROBS, modelsResponse, toWireExam, type ChatResponse } from './protocol.js';

export type RemoteFailure = 'timeout' | 'unreachable' | 'http_5xx' | 'invalid_response' | 'refused' | 'model_mismatch';

/** Every attempt failed (or one failed in a way retrying cannot fix). `attempts`: worker origin and why, PHI-free. */
export class RemoteInferenceError extends AppError {
  readonly reason: RemoteFailure;
  readonly attempts: readonly { worker: string; reason: RemoteFailure; detail: string }[];
  constructor(reason: RemoteFailure, attempts: RemoteInferenceError['attempts']) {
    const last = attempts.at(-1);
    super('model_unavailable', `remote inference failed after ${attempts.length} attempt(s): ${last ? `${last.worker} ${last.reason} (${last.detail})` : reason}`, { expose: true });
    this.name = 'RemoteInferenceError';
    this.reason = reason;
    this.attempts = attempts;
  }
}

/** One attempt's failure (internal: decides retry). */
class AttemptError extends Error {
  constructor(readonly reason: RemoteFailure, readonly detail: string, readonly retryable: boolean) {
    super(detail);
  }
}

export interface RemoteEngineOptions {
  urls: readonly string[];
  token?: string;
  fetch: GuardedFetch;
  log: Logger;
  /** Time budget of one attempt (RunOptions.timeoutMs overrides it per request). */
  timeoutMs?: number;
  /** Attempts per request across workers (default 3). */
  attempts?: number;
  /** Largest response body accepted (default 16 MiB). */
  maxResponseBytes?: number;
}

type Mode = 'exam' | 'chat';

export async function createRemoteEngine(opts: RemoteEngineOptions): Promise<VlmEngine> {
  if (!opts.urls.length) throw new AppError('config_invalid', 'no remote worker URL');
  const log = opts.log;
  const defaultTimeout = opts.timeoutMs ?? 120_000;
  const maxAttempts = opts.attempts ?? 3;
  const maxBytes = opts.maxResponseBytes ?? 16 * 2 ** 20;
  const workers = opts.urls.map((u) => u.replace(/\/+$/, ''));
  const headers = (json: boolean): Record<string, string> => ({
    accept: 'application/json',
    ...(json ? { 'content-type': 'application/json' } : {}),
    ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
  });
  let next = 0;
  let inFlight = 0;
  let closed = false;
  /** Whether the last attempt on each worker failed (all failed: status unavailable). */
  const lastFailed = new Map<string, string>();

  /** One HTTP exchange with one worker; throws AttemptError. */
  async function call(worker: string, path: string, body: unknown, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    let res: GuardedResponse;
    try {
      res = await opts.fetch(`${worker}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: headers(body !== undefined),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        timeoutMs,
        maxBytes,
        retry: false,
        ...(signal ? { signal } : {}),
      });
    } catch (e) {
      if (signal?.aborted) throw new InferenceCancelledError('aborted');
      if (e instanceof NetError) {
        if (e.reason === 'timeout') throw new AttemptError('timeout', `no answer within ${timeoutMs} ms`, true);
        if (e.reason.startsWith('refused_')) throw new AttemptError('refused', e.reason, false);
        if (e.reason === 'too_large') throw new AttemptError('invalid_response', 'response too large', true);
        throw new AttemptError('unreachable', e.reason, true);
      }
      throw new AttemptError('unreachable', 'request failed', true);
    }
    if (res.status >= 500 || res.status === 429) throw new AttemptError('http_5xx', `HTTP ${res.status}`, true);
    if (res.status === 401 || res.status === 403) throw new AttemptError('refused', `HTTP ${res.status}: check VOLMO_WORKER_TOKEN`, false);
    if (res.status !== 200) throw new AttemptError('refused', `HTTP ${res.status}${workerMessage(res)}`, false);
    try {
      return JSON.parse(res.text()) as unknown;
    } catch {
      throw new AttemptError('invalid_response', 'response is not JSON', true);
    }
  }

  /** Runs `attempt` on successive workers until one succeeds or the attempts are spent. */
  async function withRetries<T>(run: (worker: string, timeoutMs: number) => Promise<T>, ro: RunOptions): Promise<T> {
    if (closed) throw new AppError('model_unavailable', 'the inference engine is closed', { expose: true });
    if (ro.signal?.aborted) throw new InferenceCancelledError('aborted');
    const failures: { worker: string; reason: RemoteFailure; detail: string }[] = [];
    inFlight++;
    try {
      for (let i = 0; i < maxAttempts; i++) {
        const worker = workers[next++ % workers.length];
        try {
          const out = await run(worker, ro.timeoutMs ?? defaultTimeout);
          lastFailed.delete(worker);
          return out;
        } catch (e) {
          if (!(e instanceof AttemptError)) throw e;
          const origin = describeOrigin(worker);
          failures.push({ worker: origin, reason: e.reason, detail: e.detail });
          lastFailed.set(worker, `${e.reason}: ${e.detail}`);
          log.warn({ worker: origin, reason: e.reason, detail: e.detail, attempt: i + 1, of: maxAttempts }, 'remote inference attempt failed');
          if (!e.retryable) break;
        }
      }
      throw new RemoteInferenceError(failures.at(-1)!.reason, failures);
    } finally {
      inFlight--;
    }
  }

  // What the workers serve: every worker that answers must serve the same model the same way.
  let info: ModelInfo | undefined;
  let mode: Mode = 'exam';
  let modelId = '';
  const problems: string[] = [];
  for (const worker of workers) {
    try {
      const parsed = modelsResponse.safeParse(await call(worker, '/v1/models', undefined, Math.min(defaultTimeout, 15_000)));
      if (!parsed.success) throw new AttemptError('invalid_response', '/v1/models does not match the expected shape', true);
      const entry = parsed.data.data[0];
      const v = entry.volmo;
      const found: ModelInfo = v
        ? { name: v.name, version: v.version, manifestSha256: v.manifest_sha256, random: v.random, executionProvider: v.execution_provider, dtype: v.dtype }
        : { name: entry.id, version: 'unknown', manifestSha256: '', random: false, executionProvider: 'cpu', dtype: 'unknown' };
      const foundMode: Mode = v ? 'exam' : 'chat';
      if (info && (info.name !== found.name || info.manifestSha256 !== found.manifestSha256 || info.random !== found.random || mode !== foundMode)) {
        throw new AppError('config_invalid', `remote workers serve different models (${describeOrigin(worker)} differs from the first): VOLMO_INFERENCE must name workers of one model build`);
      }
      info ??= found;
      mode = foundMode;
      modelId = entry.id;
    } catch (e) {
      if (!(e instanceof AttemptError)) throw e;
      problems.push(`${describeOrigin(worker)}: ${e.reason} (${e.detail})`);
      lastFailed.set(worker, `${e.reason}: ${e.detail}`);
    }
  }
  if (!info) throw new AppError('model_unavailable', `no remote worker answered /v1/models: ${problems.join('; ')}`, { expose: true });
  if (problems.length) log.warn({ problems }, 'some remote workers did not answer at start-up; they stay in the rotation');
  const known = info;
  log.info({ workers: workers.map(describeOrigin), mode, model: known.name, random: known.random }, mode === 'exam' ? 'remote inference: volmo workers (exam extension)' : 'remote inference: OpenAI-compatible engine (one chat completion per question, no prefix reuse)');

  async function examOnce(worker: string, input: ExamInput, timeoutMs: number, signal?: AbortSignal): Promise<Answer[]> {
    const raw = await call(worker, '/v1/volmo/exam', toWireExam(input, timeoutMs), timeoutMs, signal);
    const parsed = examResponse.safeParse(raw);
    if (!parsed.success) throw new AttemptError('invalid_response', 'exam response does not match the protocol', true);
    if (parsed.data.manifest_sha256 !== known.manifestSha256) throw new AttemptError('model_mismatch', 'worker serves another model build', true);
    const answers = parsed.data.answers as Answer[];
    const bad = answersMismatch(input.questions, answers);
    if (bad) throw new AttemptError('invalid_response', bad, true);
    return answers;
  }

  async function chatOnce(worker: string, input: ExamInput, q: Question, timeoutMs: number, signal?: AbortSignal): Promise<Answer> {
    const raw = await call(worker, '/v1/chat/completions', chatBody(modelId, input, q), timeoutMs, signal);
    const parsed = chatResponse.safeParse(raw);
    if (!parsed.success) throw new AttemptError('invalid_response', 'chat completion does not match the OpenAI shape', true);
    const a = answerFromChat(q, parsed.data);
    if (typeof a === 'string') throw new AttemptError('invalid_response', a, true);
    return a;
  }

  const exam = async (input: ExamInput, ro: RunOptions = {}): Promise<Answer[]> => {
    if (!input.questions.length) throw new AppError('bad_request', 'an exam needs at least one question');
    if (mode === 'exam') return withRetries((w, t) => examOnce(w, input, t, ro.signal), ro);
    const answers: Answer[] = [];
    for (const q of input.questions) answers.push(await withRetries((w, t) => chatOnce(w, input, q, t, ro.signal), ro));
    return answers;
  };

  return {
    info: known,
    exam,
    async generate(input: GenerateInput, ro?: RunOptions): Promise<Answer> {
      const q: Question = { id: 'generate', text: input.prompt, answer: { kind: 'text', maxNewTokens: input.maxNewTokens } };
      const [a] = await exam({ images: input.images, systemMessage: input.systemMessage, questions: [q] }, ro);
      return a;
    },
    status(): EngineStatus {
      if (closed) return { state: 'closed' };
      if (workers.every((w) => lastFailed.has(w))) return { state: 'unavailable', info: known, reason: `every remote worker failed its last request (${[...lastFailed.values()][0]})` };
      return { state: 'ready', info: known, busyWorkers: Math.min(inFlight, workers.length), queued: Math.max(0, inFlight - workers.length) };
    },
    async close() {
      closed = true;
    },
  };
}

function workerMessage(res: GuardedResponse): string {
  try {
    const m = (JSON.parse(res.text()) as { error?: { message?: unknown } }).error?.message;
    return typeof m === 'string' ? `: ${m.slice(0, 200)}` : '';
  } catch {
    return '';
  }
}

/** One question as an OpenAI chat request (images as data: URLs in the first user turn). */
function chatBody(model: string, input: ExamInput, q: Question): Record<string, unknown> {
  const images = input.images.map((img) => {
    if (!(img instanceof Uint8Array)) throw new AppError('bad_request', 'preprocessed tiles cannot be sent to an OpenAI-compatible engine', { expose: true });
    const type = img[0] === 0x89 && img[1] === 0x50 ? 'image/png' : 'image/jpeg';
    return { type: 'image_url', image_url: { url: `data:${type};base64,${Buffer.from(img).toString('base64')}` } };
  });
  const turns = [...(q.history ?? []), { role: 'user' as const, content: q.text }];
  const firstUser = turns.findIndex((t) => t.role === 'user');
  const messages = [
    ...(input.systemMessage !== undefined ? [{ role: 'system', content: input.systemMessage }] : []),
    ...turns.map((t, i) => (i === firstUser && images.length ? { role: 'user', content: [...images, { type: 'text', text: t.content }] } : { role: t.role, content: t.content })),
  ];
  const choice = q.answer.kind === 'choice';
  return {
    model,
    messages,
    temperature: 0,
    max_tokens: choice ? 1 : (q.answer.kind === 'text' ? (q.answer.maxNewTokens ?? 512) : 1),
    ...(choice ? { logprobs: true, top_logprobs: MAX_TOP_LOGPROBS } : {}),
    ...(input.maxTiles !== undefined ? { max_tiles: input.maxTiles } : {}),
  };
}

/**
 * A chat completion -> the engine's Answer. Choice questions: each candidate's probability is that of
 * the top_logprobs entry whose token begins the candidate (longest match); a candidate outside the top
 * entries gets 0 (a lower bound). No candidate among them: refused, never guessed. Returns a problem string.
 */
export function answerFromChat(q: Question, res: ChatResponse): Answer | string {
  const c = res.choices[0];
  const text = (c.message.content ?? '').trim();
  if (q.answer.kind === 'text') {
    return { id: q.id, text, tokenIds: [], stopReason: c.finish_reason === 'length' ? 'max_new_tokens' : 'stop_token' };
  }
  const first = c.logprobs?.content?.[0];
  if (!first) return 'a choice question needs logprobs, and the engine returned none';
  const entries = [first, ...first.top_logprobs];
  const candidates: CandidateScore[] = q.answer.candidates.map((label) => {
    let best: { token: string; logprob: number } | undefined;
    for (const e of entries) {
      const t = e.token.trim();
      if (t && label.startsWith(t) && (!best || t.length > best.token.trim().length)) best = e;
    }
    return { label, tokenId: -1, probability: best ? Math.exp(best.logprob) : 0 };
  });
  // Several candidates matching the same token (e.g. "10" and "1") cannot be told apart.
  const sum = candidates.reduce((s, x) => s + x.probability, 0);
  if (sum === 0) return 'no candidate answer among the engine\'s top_logprobs';
  if (sum > 1 + 1e-6) return 'candidates share a first token: probabilities cannot be told apart';
  const max = Math.max(...candidates.map((x) => x.probability));
  const choice = candidates.find((x) => x.probability === max)!.label;
  return { id: q.id, text: choice, tokenIds: [], stopReason: 'single_step', candidates, choice, greedyIsCandidate: candidates.some((x) => first.token.trim() !== '' && x.label.startsWith(first.token.trim())) };
}
