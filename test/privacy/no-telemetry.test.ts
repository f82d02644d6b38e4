/**
 * Issue 14, finding 2: onnxruntime-node 1.30 sends telemetry (a native DNS lookup of
 * mobile.events.data.microsoft.com, a device id and an event cache under ~/.cache) unless its switch is set
 * before the library initialises. The model runs in a child process whose outbound traffic is traced and
 * refused (outbound-trace.ts); any non-loopback lookup or connection, or a telemetry file, fails the test.
 * Two controls show that the tracers can fail: deliberate outbound attempts (canary), and onnxruntime opened
 * without the switch (its real telemetry).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { ortTelemetryOff, ORT_TELEMETRY_SWITCHES } from '../../src/platform/no-telemetry.js';
import { buildTiny } from '../model/model-harness.js';
import { straceWorks, traceChild, type OutboundReport } from './outbound-trace.js';

/** onnxruntime's first upload attempt came ~9 s after the session opened here; hold the model past it. */
const HOLD_MS = 12_000;
const TIMEOUT_MS = 45_000;

let modelDir: string;
let product: OutboundReport;
let control: OutboundReport;

beforeAll(async () => {
  modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-telemetry-model-')) })).outDir;
  // Both children hold their model for HOLD_MS; run them side by side.
  [product, control] = await Promise.all([
    traceChild(['model', modelDir, String(HOLD_MS)], { timeoutMs: TIMEOUT_MS }),
    straceWorks ? traceChild(['raw-ort', modelDir, String(HOLD_MS)], { timeoutMs: TIMEOUT_MS }) : Promise.resolve(undefined as never),
  ]);
}, 120_000);

describe('onnxruntime telemetry is off wherever the model runs', () => {
  it('the engine (worker thread, real onnxruntime) loads the TEST MODEL and generates with no outbound lookup, connection or telemetry file', () => {
    expect(product.code, product.stderr).toBe(0);
    const done = JSON.parse(product.stdout.trim()) as { tokens: number; random: boolean };
    expect(done.random).toBe(true); // the tiny random-weight TEST MODEL
    expect(done.tokens).toBeGreaterThan(0);
    expect(product.node).toEqual([]);
    expect(product.os).toEqual([]);
    expect(product.telemetryFiles).toEqual([]);
  });

  it.skipIf(!straceWorks)('control: onnxruntime opened without the switch is caught (telemetry files; its DNS lookup, when it comes, refused at the OS level)', () => {
    expect(control.code, control.stderr).toBe(0);
    expect(control.telemetryFiles.some((f) => /onnxruntime/.test(f))).toBe(true);
    // The native lookup of the collector's host (a UDP connect to the resolver's port 53) comes ~9 s after the
    // session opens; on a loaded machine it may fall after the child's 12 s. When it comes, it is refused.
    const lookups = control.os.filter((l) => /htons\(53\)/.test(l));
    if (lookups.length > 0) expect(control.os.some((l) => /EACCES/.test(l))).toBe(true); // strace may print the result on a "resumed" line
    else console.warn('no-telemetry control: the DNS lookup did not come within the run (loaded machine); the telemetry files alone show the check works');
  });

  it('canary: deliberate lookups and connections are refused and recorded at the Node level (and the native one by strace)', async () => {
    const r = await traceChild(['canary'], { timeoutMs: 20_000, env: { VOLMO_NATIVE_CANARY: straceWorks ? '1' : '0' } });
    expect(r.code, r.stderr).toBe(0);
    const { results } = JSON.parse(r.stdout.trim()) as { results: Record<string, string> };
    expect(results.lookup).toBe('NonLoopbackConnectionError');
    expect(results.tcp).toBe('NonLoopbackConnectionError');
    expect(results.udp).toBe('NonLoopbackConnectionError');
    expect(r.node.map((e) => `${e.layer}:${e.host}`)).toEqual(expect.arrayContaining(['dns:telemetry-canary.example.com', 'net:192.0.2.10', 'dgram:192.0.2.10']));
    if (straceWorks) expect(r.os.some((l) => /htons\(53\)/.test(l))).toBe(true);
  });

  it('a worker thread cannot switch telemetry off itself, so a session opened without the switch inherited is refused', async () => {
    expect(ortTelemetryOff()).toBe(true); // this process: test/setup.ts and vitest.config.ts set it
    const env: Record<string, string | undefined> = { ...process.env };
    for (const k of Object.keys(ORT_TELEMETRY_SWITCHES)) delete env[k];
    const session = new URL('../../src/model/runtime/onnx-session.ts', import.meta.url).href;
    const tsx = new URL('../../node_modules/tsx/dist/esm/api/index.mjs', import.meta.url).href;
    const code = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(session)}); })
      .then((s) => s.openSession(${JSON.stringify(join(modelDir, 'vision.onnx'))}, { executionProvider: 'cpu', log: console }))
      .then(() => require('node:worker_threads').parentPort.postMessage('opened'), (e) => require('node:worker_threads').parentPort.postMessage(e.reason ?? e.message));`;
    const w = new Worker(code, { eval: true, env });
    const answer = await new Promise((resolve) => w.once('message', resolve));
    await w.terminate();
    expect(answer).toBe('telemetry_on');
  });

  it('every entry point imports the switch before anything else', () => {
    const first = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8').split('\n').find((l) => /^(import |await import\()/.test(l) && !/tsx|websocket-shim/.test(l));
    for (const file of ['src/cli.ts', 'src/model/cli.ts', 'src/model/runtime/engine.ts', 'src/model/runtime/worker.ts', 'src/model/runtime/onnx-session.ts', 'bench/index.ts', 'bench/transformers-baseline/baseline.ts', 'bin/volmo.js', 'test/setup.ts', 'vitest.config.ts']) {
      expect(first(file), file).toMatch(/platform\/no-telemetry\.(js|ts)/);
    }
  });
});
