/**
 * `npm run bench -- scale`: (1) analyses per minute — the product's screening exam (12 TRUE/FALSE + DR stage) on
 * the fixture fundus photos, `--exams=N` (12) of them kept in flight two per worker — through 1 and 2 `volmo
 * worker` processes (the RemoteEngine the service uses with VOLMO_INFERENCE), against the in-process runtime in
 * the same run; (2) hook latency while a backlog drains — the sandboxed service on those workers answers
 * order-sign for an analysed patient (autocannon from a second process, 16 connections) while the workers are
 * idle, then while they are saturated with exams. Model: the tiny test model (default, --model=tiny), the bench
 * model (--model=bench: InternLM2-1.8B layer geometry, --layers=N (2) LLM layers and 1 vision layer of
 * InternViT-300M geometry, random weights, --dtype=fp32|fp16|int4 (fp32); --full: VOLMO-2B size, 24 + 24 layers,
 * int4; built once under the OS temp dir with the tiny tokenizer so the product's prompts encode), or
 * --model=DIR (a built model). --skip-hooks leaves out part (2) (its analysis of a patient takes minutes on the
 * bench model).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { buildModel } from '../src/model/build/build-model.js';
import { readManifest } from '../src/model/manifest.js';
import { createEngine } from '../src/model/runtime/engine.js';
import type { ExamInput, VlmEngine } from '../src/model/runtime/types.js';
import { createGuardedFetch } from '../src/net/guarded-fetch.js';
import { ehrToken, fixturePatientId, sandboxHookCall } from '../src/sandbox/ehr-access.js';
import type { HookCall } from '../src/sandbox/ehr-simulator.js';
import { listFixturePatients } from '../src/sandbox/fixtures.js';
import { startServiceWithSandbox } from '../src/sandbox/service.js';
import { loadSandboxSettings } from '../src/sandbox/settings.js';
import { ensureTinyModel } from '../src/sandbox/tiny-model.js';
import { createRemoteEngine } from '../src/worker/remote-engine.js';
import { startWorkerProcess } from '../test/worker/worker-process.js';
import { examQuestions, fixtureFundusImages } from './accuracy.js';
import { load, untilAnalysed } from './hooks.js';
import { benchSnapshot } from './builds.js';
import { formatTable, type BenchTable } from './table.js';

const TOKEN = 'bench-scale-worker-token-0123456789';
const opt = (args: string[], name: string, dflt?: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;

/** The model the bench runs and how the table names it. */
export async function scaleModel(args: string[]): Promise<{ dir: string; what: string }> {
  const model = opt(args, 'model', 'tiny')!;
  if (model === 'tiny') return { dir: await ensureTinyModel(mkdtempSync(join(tmpdir(), 'volmo-bench-scale-')), silentLogger()), what: 'tiny test model (random weights)' };
  if (model !== 'bench') {
    if (!existsSync(join(model, 'manifest.json'))) throw new Error(`--model=${model}: not a built model directory (no manifest.json); use tiny, bench or a directory written by volmo model build`);
    return { dir: model, what: `model ${model}` };
  }
  const full = args.includes('--full');
  const layers = full ? 24 : Number(opt(args, 'layers', '2'));
  if (!Number.isInteger(layers) || layers < 1 || layers > 24) throw new Error('--layers must be an integer 1..24');
  const dtype = opt(args, 'dtype', full ? 'int4' : 'fp32')!;
  if (!['fp32', 'fp16', 'int4'].includes(dtype)) throw new Error('--dtype must be fp32, fp16 or int4');
  const visionLayers = full ? 24 : 1;
  // Its own folders (not the runtime bench's): this one needs the tokenizer, and other checkouts build theirs.
  const stem = `volmo-scale-${layers}l-${visionLayers}v`;
  const dir = join(tmpdir(), `${stem}-${dtype}`);
  if (!existsSync(join(dir, 'manifest.json'))) await buildModel(benchSnapshot(stem, layers, visionLayers, true), dir, { dtype: dtype as 'fp32' | 'fp16' | 'int4' });
  const m = readManifest(dir);
  return { dir, what: `bench model: InternLM2-1.8B geometry, ${m.llm.layers} LLM + ${m.vision.layers} vision layers, ${m.dtype}, random weights` };
}

function examTable(what: string, exams: number, rows: (string | number)[][]): BenchTable {
  return {
    title: `Analyses per minute through volmo worker processes (${what}; ${exams} screening exams of 13 questions on the fixture fundus photos)`,
    columns: ['inference', 'worker processes', 'exams in flight', 'exams/min', 'vs in-process'],
    rows,
    notes: ['baseline: the in-process runtime (one engine in the bench process), measured in the same run', 'all processes share this machine\'s cores: a second worker on the same cores adds no arithmetic, only parallel HTTP and image preparation'],
  };
}

/** Runs `exams` exams with `inFlight` at a time; exams per minute. */
async function drain(engine: VlmEngine, inputs: ExamInput[], exams: number, inFlight: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < exams) {
      const i = next++;
      await engine.exam(inputs[i % inputs.length]!);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return exams / ((performance.now() - t0) / 60_000);
}

async function remoteEngine(urls: string[]): Promise<{ engine: VlmEngine; close(): Promise<void> }> {
  const fetch = createGuardedFetch({ allow: urls.map((prefix) => ({ prefix, allowPrivateNetwork: true })) });
  const engine = await createRemoteEngine({ urls, token: TOKEN, fetch, log: silentLogger(), timeoutMs: 600_000 });
  return { engine, close: async () => (await engine.close(), fetch.close()) };
}

export async function runScaleBench(args: string[]): Promise<BenchTable[]> {
  const exams = Number(opt(args, 'exams', '12'));
  if (!Number.isInteger(exams) || exams < 1) throw new Error('--exams must be a positive integer');
  const { dir: modelDir, what } = await scaleModel(args);
  const questions = examQuestions();
  const inputs: ExamInput[] = fixtureFundusImages().map((f) => ({ images: [new Uint8Array(readFileSync(join('fixtures/images', f)))], questions }));
  const workers: ChildProcess[] = [];
  const rows: (string | number)[][] = [];
  try {
    const local = await createEngine({ modelDir, log: silentLogger() });
    await local.exam(inputs[0]!); // warm-up
    const base = await drain(local, inputs, exams, 2);
    await local.close();
    rows.push(['in-process runtime (VOLMO_INFERENCE=local)', 1, 2, base.toFixed(1), '1.00x']);
    const urls: string[] = [];
    for (const n of [1, 2]) {
      while (urls.length < n) {
        const w = await startWorkerProcess(modelDir, { VOLMO_WORKER_TOKEN: TOKEN });
        workers.push(w.child);
        urls.push(w.url);
      }
      const remote = await remoteEngine(urls);
      await remote.engine.exam(inputs[0]!); // warm-up (each worker in turn over the round-robin)
      if (n === 2) await remote.engine.exam(inputs[0]!);
      const perMin = await drain(remote.engine, inputs, exams, 2 * n);
      await remote.close();
      rows.push([`volmo worker processes over HTTP (/v1/volmo/exam)`, n, 2 * n, perMin.toFixed(1), `${(perMin / base).toFixed(2)}x`]);
    }

    // Hook latency while a backlog drains: the service on the two workers; the backlog is exams sent to the same workers.
    const root = mkdtempSync(join(tmpdir(), 'volmo-bench-scale-svc-'));
    const env = {
      VOLMO_PORT: '0', VOLMO_SANDBOX_FHIR_PORT: '0', VOLMO_SANDBOX_AUTH_PORT: '0', VOLMO_SANDBOX_EHR_PORT: '0', VOLMO_SANDBOX_PACS_PORT: '0',
      VOLMO_SANDBOX_STATE_DIR: join(root, 'state'), VOLMO_LOG_LEVEL: 'silent', VOLMO_WATCH: 'false', VOLMO_INFERENCE: urls.join(','), VOLMO_WORKER_TOKEN: TOKEN,
    };
    if (args.includes('--skip-hooks')) return [examTable(what, exams, rows)];
    // Printed now: the hook part takes minutes on a bench model, and a run cut short keeps this table.
    console.log(`${formatTable(examTable(what, exams, rows))}\n`);
    const svc = await startServiceWithSandbox(loadConfig(env), loadSandboxSettings(env), silentLogger());
    const hookRows: (string | number)[][] = [];
    try {
      const sb = svc.sandbox;
      const token = await ehrToken(sb.fhirBaseUrl, sb.ehr);
      const patientId = await fixturePatientId(sb.fhirBaseUrl, token.access_token, listFixturePatients().find((p) => p.key === 'diabetic')!.mrn);
      const call: HookCall = await sandboxHookCall({ serviceBaseUrl: svc.url, fhirBaseUrl: sb.fhirBaseUrl, token, patientId, hook: 'order-sign', prefetch: true, withToken: true });
      await untilAnalysed(svc, call);
      const body = JSON.stringify({ hook: call.hook, hookInstance: '7c0e0b1e-5a7e-4c38-9a55-2f0d3c1b2a19', fhirServer: call.fhirServer, fhirAuthorization: call.fhirAuthorization, context: call.context, prefetch: call.prefetch });
      const idle = await load(sb.ehr, call.serviceUrl, call.serviceUrl, body, 16, 960, 8);
      hookRows.push(['workers idle', idle.rps.toFixed(0), idle.p50, idle.p99, '1.00x', idle.non2xx + idle.errors]);
      const backlog = await remoteEngine(urls);
      let stop = false;
      let done = 0;
      const lane = async () => {
        while (!stop) {
          await backlog.engine.exam(inputs[done % inputs.length]!);
          done++;
        }
      };
      const lanes = Array.from({ length: 4 }, lane);
      await new Promise((r) => setTimeout(r, 1000));
      const busy = await load(sb.ehr, call.serviceUrl, call.serviceUrl, body, 16, 960, 8);
      stop = true;
      await Promise.all(lanes);
      await backlog.close();
      hookRows.push([`workers saturated (4 exams in flight; ${done} finished meanwhile)`, busy.rps.toFixed(0), busy.p50, busy.p99, `${(busy.p99 / Math.max(idle.p99, 1)).toFixed(2)}x`, busy.non2xx + busy.errors]);
    } finally {
      await svc.close();
    }
    return [
      {
        title: 'Order-sign hook latency for an analysed patient while the workers drain a backlog (16 connections, autocannon from a second process)',
        columns: ['workers', 'requests/s', 'p50 ms', 'p99 ms', 'p99 vs idle', 'non-2xx + errors'],
        rows: hookRows,
        notes: ['baseline: the same hook with the workers idle, measured in the same run'],
      },
    ];
  } finally {
    for (const w of workers) w.kill('SIGTERM');
  }
}
