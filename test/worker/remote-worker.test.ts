/**
 * Remote inference (issue 11): the service's RemoteEngine against `volmo worker` (spawned as its own
 * process on a loopback port with the tiny random-weight model) answers exactly as the in-process
 * runtime; faulty workers (garbage, 500, hanging) are retried and then fail with a typed error within a
 * bounded time; the worker refuses callers without its token; chat completions return logprobs.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { createEngine } from '../../src/model/runtime/engine.js';
import type { ExamInput, VlmEngine } from '../../src/model/runtime/types.js';
import { createGuardedFetch, type GuardedFetch } from '../../src/net/guarded-fetch.js';
import { modelsBody } from '../../src/worker/protocol.js';
import { createRemoteEngine, RemoteInferenceError } from '../../src/worker/remote-engine.js';
import { buildTiny } from '../model/model-harness.js';
import { startWorkerProcess } from './worker-process.js';

const TOKEN = 'test-worker-token-0123456789abcdef';
let modelDir: string;
let worker: ChildProcess;
let workerUrl: string;
let local: VlmEngine;
let png: Uint8Array;
const fetches: GuardedFetch[] = [];

function guarded(urls: string[]): GuardedFetch {
  const f = createGuardedFetch({ allow: urls.map((prefix) => ({ prefix, allowPrivateNetwork: true })) });
  fetches.push(f);
  return f;
}

const exam = (): ExamInput => ({
  images: [png],
  questions: [
    { id: 'dr', text: 'Does the image show diabetic retinopathy? Answer TRUE or FALSE.', answer: { kind: 'choice', candidates: ['TRUE', 'FALSE'] } },
    { id: 'amd', text: 'Does the image show age-related macular degeneration? Answer TRUE or FALSE.', answer: { kind: 'choice', candidates: ['TRUE', 'FALSE'] } },
    { id: 'stage', text: 'What is the DR stage? Answer 0, 1, 2, 3 or 4.', answer: { kind: 'choice', candidates: ['0', '1', '2', '3', '4'] } },
    { id: 'describe', text: 'Describe the image.', answer: { kind: 'text', maxNewTokens: 6 } },
  ],
});

beforeAll(async () => {
  modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-worker-model-')) })).outDir;
  png = new Uint8Array(
    await sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 150, g: 60, b: 30 } } })
      .composite([{ input: { create: { width: 20, height: 20, channels: 3, background: { r: 250, g: 240, b: 200 } } }, left: 50, top: 20 }])
      .png()
      .toBuffer(),
  );
  [local, { child: worker, url: workerUrl }] = await Promise.all([createEngine({ modelDir, log: silentLogger() }), startWorkerProcess(modelDir, { VOLMO_WORKER_TOKEN: TOKEN })]);
}, 180_000);

afterAll(async () => {
  worker?.kill('SIGTERM');
  await local?.close();
  for (const f of fetches) f.close();
});

describe('the service against its own worker over HTTP', () => {
  it('gives the same answers and probabilities as the in-process runtime, and the TEST MODEL flag', async () => {
    const remote = await createRemoteEngine({ urls: [workerUrl], token: TOKEN, fetch: guarded([workerUrl]), log: silentLogger(), timeoutMs: 60_000 });
    expect(remote.info).toMatchObject({ name: local.info.name, version: local.info.version, manifestSha256: local.info.manifestSha256, random: true });
    const [want, got] = await Promise.all([local.exam(exam()), remote.exam(exam())]);
    expect(got.map((a) => [a.id, a.choice, a.text, a.tokenIds, a.stopReason, a.greedyIsCandidate])).toEqual(want.map((a) => [a.id, a.choice, a.text, a.tokenIds, a.stopReason, a.greedyIsCandidate]));
    for (const [i, a] of got.entries()) {
      const w = want[i].candidates;
      expect(a.candidates?.map((c) => c.label)).toEqual(w?.map((c) => c.label));
      a.candidates?.forEach((c, k) => expect(Math.abs(c.probability - w![k].probability)).toBeLessThan(1e-6));
    }
    expect(got[0].candidates!.every((c) => c.probability > 0)).toBe(true);
    expect(remote.status().state).toBe('ready');
    const g = await remote.generate({ images: [png], prompt: 'Describe the image.', maxNewTokens: 4 });
    expect(g.tokenIds).toEqual((await local.generate({ images: [png], prompt: 'Describe the image.', maxNewTokens: 4 })).tokenIds);
  }, 120_000);

  it('refuses callers without the token (OpenAI-style error body), before reading any body', async () => {
    const none = await fetch(`${workerUrl}/v1/models`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { type: string } }).error.type).toBe('authentication_error');
    const wrong = await fetch(`${workerUrl}/v1/volmo/exam`, { method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json' }, body: '{}' });
    expect(wrong.status).toBe(401);
    const remote = createRemoteEngine({ urls: [workerUrl], token: 'wrong-token-0123456789', fetch: guarded([workerUrl]), log: silentLogger() });
    await expect(remote).rejects.toThrow(/no remote worker answered.*refused/);
    const ok = await fetch(`${workerUrl}/v1/models`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await ok.json()) as { data: { id: string; volmo: { random: boolean } }[] };
    expect(body.data[0].volmo.random).toBe(true);
  });

  it('chat completions: one question with logprobs; temperature other than 0 is refused', async () => {
    const dataUrl = `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
    const q = exam().questions[0];
    const post = (extra: Record<string, unknown>) =>
      fetch(`${workerUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'volmo', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl } }, { type: 'text', text: q.text }] }], max_tokens: 1, ...extra }),
      });
    const res = await post({ temperature: 0, logprobs: true, top_logprobs: 5 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; choices: { message: { content: string }; finish_reason: string; logprobs: { content: { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] }[] } }[] };
    expect(body.object).toBe('chat.completion');
    const [first] = body.choices[0].logprobs.content;
    expect(body.choices[0].logprobs.content).toHaveLength(1);
    expect(first.top_logprobs).toHaveLength(5);
    const lps = first.top_logprobs.map((t) => t.logprob);
    expect([...lps].sort((a, b) => b - a)).toEqual(lps);
    expect(lps.every((l) => l <= 0)).toBe(true);
    expect(first.logprob).toBeCloseTo(lps[0], 9); // greedy: the chosen token is the likeliest
    // The same prompt as the in-process choice question: its greedy token's probability bounds the candidates'.
    const [want] = await local.exam({ images: [png], questions: [q] });
    const pMax = Math.max(...want.candidates!.map((c) => c.probability));
    expect(Math.exp(first.logprob)).toBeGreaterThanOrEqual(pMax - 1e-6);
    if (want.greedyIsCandidate) expect(Math.abs(Math.exp(first.logprob) - pMax)).toBeLessThan(1e-6);

    const hot = await post({ temperature: 0.7 });
    expect(hot.status).toBe(400);
    expect(((await hot.json()) as { error: { message: string; type: string } }).error).toMatchObject({ type: 'invalid_request_error', message: expect.stringMatching(/greedily.*temperature must be 0/) });
  }, 60_000);
});

describe('faulty workers', () => {
  let server: Server;
  let url: string;
  let behaviour: 'garbage' | '500' | 'hang' | 'wrong-candidates' = 'garbage';
  let calls = 0;
  beforeAll(async () => {
    const info = { ...local.info }; // claims the same model build as the real worker
    server = createServer((req, res) => {
      if (req.url === '/v1/models') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(modelsBody(info)));
      calls++;
      req.resume();
      if (behaviour === 'hang') return; // never answers
      if (behaviour === '500') return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"boom"}}');
      if (behaviour === 'wrong-candidates') {
        const answers = exam().questions.map((q) => ({ id: q.id, text: 'MAYBE', tokenIds: [1], stopReason: 'single_step', candidates: [{ label: 'MAYBE', tokenId: 1, probability: 0.9 }], choice: 'MAYBE' }));
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'volmo.exam', model: 'scripted', manifest_sha256: info.manifestSha256, answers }));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"answers": "TRUE TRUE TRUE"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server?.closeAllConnections();
    server?.close();
  });

  it.each(['garbage', '500', 'hang', 'wrong-candidates'] as const)('%s: retried within limits, then a typed failure, bounded in time', async (b) => {
    behaviour = b;
    calls = 0;
    const remote = await createRemoteEngine({ urls: [url], fetch: guarded([url]), log: silentLogger(), timeoutMs: 400, attempts: 3 });
    const t0 = Date.now();
    const err = await remote.exam(exam()).then(() => undefined, (e: unknown) => e);
    const elapsed = Date.now() - t0;
    expect(err).toBeInstanceOf(RemoteInferenceError);
    const e = err as RemoteInferenceError;
    expect(e.code).toBe('model_unavailable');
    expect(e.reason).toBe({ garbage: 'invalid_response', '500': 'http_5xx', hang: 'timeout', 'wrong-candidates': 'invalid_response' }[b]);
    expect(e.attempts).toHaveLength(3);
    expect(calls).toBe(3);
    expect(elapsed).toBeLessThan(b === 'hang' ? 3 * 400 + 1500 : 1500);
    expect(remote.status().state).toBe('unavailable');
  });

  it('a failed attempt moves on to the next worker, whose answer is used', async () => {
    behaviour = '500';
    const remote = await createRemoteEngine({ urls: [url, workerUrl], token: TOKEN, fetch: guarded([url, workerUrl]), log: silentLogger(), timeoutMs: 60_000, attempts: 2 });
    const [want, got] = await Promise.all([local.exam(exam()), remote.exam(exam())]);
    expect(got.map((a) => a.choice ?? a.text)).toEqual(want.map((a) => a.choice ?? a.text));
  }, 60_000);

  it('an unreachable worker: typed failure, no answer', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((r) => dead.close(() => r()));
    behaviour = 'garbage';
    const remote = await createRemoteEngine({ urls: [url, deadUrl], fetch: guarded([url, deadUrl]), log: silentLogger(), timeoutMs: 400, attempts: 2 });
    const err = (await remote.exam(exam()).catch((e: unknown) => e)) as RemoteInferenceError;
    expect(err).toBeInstanceOf(RemoteInferenceError);
    expect(err.attempts.map((a) => a.reason).sort()).toEqual(['invalid_response', 'unreachable']);
  });
});
