/**
 * `volmo worker`: the model runtime behind HTTP. OpenAI-compatible `GET /v1/models` and
 * `POST /v1/chat/completions` (greedy only), and VOLMO's extension `POST /v1/volmo/exam` that keeps the
 * prefix reuse of an exam's questions. Bearer auth is checked before any body is read; bodies are read
 * within limits (src/http/bounded-json.ts). Nothing of a request (images, prompts, answers) is logged.
 */
import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { AppError, isAppError } from '../errors.js';
import { readJsonBody, type JsonLimits } from '../http/bounded-json.js';
import { bind, type RunningServer } from '../http/server.js';
import type { Logger } from '../log.js';
import { insertImagePlaceholders, IMAGE_PLACEHOLDER } from '../model/prompt.js';
import type { Answer, ExamImage, Question, VlmEngine } from '../model/runtime/types.js';
import { chatRequest, examRequest, fromWireExam, modelsBody, openAiError, type ChatRequest } from './protocol.js';

export interface WorkerAppOptions {
  engine: VlmEngine;
  /** Bearer token callers must present; undefined only when bound to loopback. */
  token?: string;
  limits: JsonLimits;
  log: Logger;
}

const DEFAULT_MAX_TOKENS = 512;

function sha(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const first = r.error.issues.slice(0, 3).map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`);
  throw new AppError('bad_request', `invalid request: ${first.join('; ')}`, { expose: true });
}

/** Aborts when the caller goes away before the answer is written. */
function callerSignal(req: Request, res: Response): AbortSignal {
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  void req;
  return ac.signal;
}

export function createWorkerApp(opts: WorkerAppOptions): express.Express {
  const { engine, limits, log } = opts;
  const app = express();
  app.disable('x-powered-by');
  const wanted = opts.token === undefined ? undefined : sha(opts.token);

  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  // Everything under /v1 needs the bearer token (when one is configured), before any body is read.
  app.use('/v1', (req: Request, _res: Response, next: NextFunction) => {
    if (!wanted) return next();
    const m = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    if (!m || !timingSafeEqual(sha(m[1]), wanted)) return next(new AppError('unauthorized', 'missing or wrong bearer token (VOLMO_WORKER_TOKEN)', { expose: true }));
    next();
  });

  app.get('/v1/models', (_req, res) => void res.json(modelsBody(engine.info)));

  app.post('/v1/volmo/exam', async (req, res, next) => {
    try {
      const body = parse(examRequest, await readJsonBody(req, limits));
      const input = fromWireExam(body);
      const answers = await engine.exam(input, { signal: callerSignal(req, res), ...(body.timeout_ms ? { timeoutMs: body.timeout_ms } : {}) });
      res.json({ object: 'volmo.exam', model: engine.info.name, manifest_sha256: engine.info.manifestSha256, answers });
    } catch (e) {
      next(e);
    }
  });

  app.post('/v1/chat/completions', async (req, res, next) => {
    try {
      const body = parse(chatRequest, await readJsonBody(req, limits));
      const { input, topLogprobs } = chatToExam(body);
      const [answer] = await engine.exam(input, { signal: callerSignal(req, res) });
      res.json(chatCompletion(engine.info.name, answer, topLogprobs));
    } catch (e) {
      next(e);
    }
  });

  app.use((_req: Request, _res: Response, next: NextFunction) => next(new AppError('not_found', 'no such endpoint', { expose: true })));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = isAppError(err) ? err : (err as { type?: string })?.type === 'entity.too.large' ? new AppError('payload_too_large', 'request body too large') : new AppError('internal', 'internal error', { cause: err });
    if (e.status >= 500) log.error({ code: e.code, route: req.route?.path ?? 'unmatched', err: e.status === 500 ? err : undefined }, 'worker request failed');
    else log.info({ code: e.code, route: req.route?.path ?? 'unmatched' }, 'worker request refused');
    if (res.headersSent) return;
    if (!req.complete) res.set('Connection', 'close');
    if (e.status === 401) res.set('WWW-Authenticate', 'Bearer');
    res.status(e.status).json(openAiError(e.status, e.expose ? e.message : 'internal error', e.code));
  });
  return app;
}

const DATA_URL = /^data:image\/(?:png|jpeg|jpg|webp|tiff);base64,([A-Za-z0-9+/]*={0,2})$/;

function textOf(content: string | ({ type: 'text'; text: string } | { type: 'image_url' })[]): string {
  return typeof content === 'string' ? content : content.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n');
}

/** One chat request -> a one-question exam (greedy: temperature 0 only). */
export function chatToExam(body: ChatRequest): { input: { images: ExamImage[]; systemMessage?: string; maxTiles?: number; questions: Question[] }; topLogprobs?: number } {
  const refuse = (msg: string) => new AppError('bad_request', msg, { expose: true });
  if (body.temperature !== undefined && body.temperature !== 0) throw refuse('this worker decodes greedily only: temperature must be 0');
  if (body.top_p !== undefined && body.top_p !== 1) throw refuse('this worker decodes greedily only: top_p must be 1');
  if (body.n !== undefined && body.n !== 1) throw refuse('n must be 1');
  if (body.stream) throw refuse('streaming is not supported');
  if (body.top_logprobs !== undefined && !body.logprobs) throw refuse('top_logprobs needs logprobs: true');
  const msgs = body.messages;
  let systemMessage: string | undefined;
  const turns = msgs.filter((m, i) => {
    if (m.role !== 'system') return true;
    if (i !== 0) throw refuse('only the first message may be a system message');
    systemMessage = textOf(m.content);
    return false;
  });
  const last = turns.at(-1);
  if (!last || last.role !== 'user') throw refuse('the last message must be a user message');
  const images: ExamImage[] = [];
  let firstWithImages = -1;
  for (const [i, m] of turns.entries()) {
    if (typeof m.content === 'string') continue;
    for (const p of m.content) {
      if (p.type !== 'image_url') continue;
      if (m.role !== 'user') throw refuse('images are allowed in user messages only');
      const match = DATA_URL.exec(p.image_url.url);
      if (!match) throw refuse('image_url must be a data: URL (data:image/png|jpeg;base64,...)');
      const buf = Buffer.from(match[1], 'base64');
      images.push(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
      if (firstWithImages < 0) firstWithImages = i;
    }
  }
  const texts = turns.map((m) => textOf(m.content));
  const tagged = texts.some((t) => t.includes(IMAGE_PLACEHOLDER));
  // Untagged images: VOLMO's own insertion for a single turn; with earlier turns the tags go to the first user turn with images.
  if (images.length && !tagged && turns.length > 1) texts[firstWithImages] = insertImagePlaceholders(texts[firstWithImages], images.length);
  const history = turns.slice(0, -1).map((m, i) => ({ role: m.role as 'user' | 'assistant', content: texts[i] }));
  const topLogprobs = body.logprobs ? (body.top_logprobs ?? 0) : undefined;
  const question: Question = {
    id: 'chat',
    text: texts.at(-1)!,
    answer: { kind: 'text', maxNewTokens: body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_MAX_TOKENS, ...(topLogprobs !== undefined ? { topLogprobs } : {}) },
    ...(history.length ? { history } : {}),
  };
  return { input: { images, ...(systemMessage !== undefined ? { systemMessage } : {}), ...(body.max_tiles ? { maxTiles: body.max_tiles } : {}), questions: [question] }, topLogprobs };
}

function chatCompletion(model: string, a: Answer, topLogprobs: number | undefined) {
  const bytes = (s: string) => [...Buffer.from(s, 'utf8')];
  return {
    id: `chatcmpl-${randomUUID()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: a.text },
        finish_reason: a.stopReason === 'stop_token' ? 'stop' : 'length',
        logprobs:
          topLogprobs === undefined
            ? null
            : {
                content: (a.logprobs ?? []).map((l) => ({
                  token: l.token,
                  logprob: l.logprob,
                  bytes: bytes(l.token),
                  top_logprobs: l.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token) })),
                })),
              },
      },
    ],
    usage: { completion_tokens: a.tokenIds.length },
  };
}

export interface WorkerSettings {
  host: string;
  port: number;
  token?: string;
  limits: JsonLimits;
  shutdownGraceMs: number;
}

export interface RunningWorker {
  url: string;
  close(): Promise<void>;
}

/** Serves `engine` on host:port; refuses to listen beyond loopback without a token. */
export async function startWorkerServer(settings: WorkerSettings, engine: VlmEngine, log: Logger): Promise<RunningWorker> {
  if (!settings.token && !isLoopbackHost(settings.host)) {
    throw new AppError('config_invalid', `VOLMO_WORKER_TOKEN is required when the worker listens beyond loopback (VOLMO_WORKER_HOST=${settings.host})`);
  }
  const server: RunningServer = await bind(settings.host, settings.port, log);
  server.setHandler(createWorkerApp({ engine, token: settings.token, limits: settings.limits, log }));
  const { info } = engine;
  log.info({ url: server.url, model: info.name, version: info.version, random: info.random, auth: Boolean(settings.token) }, info.random ? 'volmo worker listening: TEST MODEL WITH RANDOM WEIGHTS — outputs are not clinical' : 'volmo worker listening');
  return { url: server.url, close: () => server.close(settings.shutdownGraceMs) };
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
