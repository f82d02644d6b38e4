/**
 * Inference worker thread: loads the model once, then answers batches posted by the engine. ORT's
 * `session.run` blocks the thread while it computes, so this thread never sees messages during a
 * batch; cancellation therefore arrives through shared-memory flags checked between runs.
 */
// First (it only checks here: a worker cannot set the C environment; onnx-session.ts refuses without it).
import '../../platform/no-telemetry.js';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import type { Logger } from '../../log.js';
import type { InferenceBackend, LoadBackend } from './backend.js';
import type { CancelSignal } from './cancel.js';
import { FLAG_RUNNING, FLAG_TIMEOUT, toWireError, type FromWorker, type ToWorker, type WorkerInit } from './worker-protocol.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const send = (m: FromWorker) => port.postMessage(m);

// Log lines go to the engine's logger (which redacts) instead of this thread's stdout.
const log: Logger = pino(
  { level: init.logLevel, base: undefined, formatters: { level: (label) => ({ level: label }) } },
  { write: (line: string) => send({ type: 'log', line }) },
);

/** Fires when every request of the batch has been cancelled; a timeout wins over a plain abort. */
function batchSignal(flags: Int32Array[]): CancelSignal {
  return {
    get aborted() {
      return flags.every((f) => Atomics.load(f, 0) !== FLAG_RUNNING);
    },
    get reason() {
      return flags.some((f) => Atomics.load(f, 0) === FLAG_TIMEOUT) ? 'timeout' : 'aborted';
    },
  };
}

async function main(): Promise<void> {
  let backend: InferenceBackend;
  try {
    const mod = (await import(init.backendModule)) as { loadBackend: LoadBackend };
    backend = await mod.loadBackend({
      modelDir: init.modelDir,
      executionProvider: init.executionProvider,
      threads: init.threads,
      verifyChecksums: init.verifyChecksums,
      log,
    });
  } catch (err) {
    send({ type: 'load_failed', error: toWireError(err) });
    return;
  }
  send({ type: 'ready', info: backend.info });
  port.on('message', async (msg: ToWorker) => {
    if (msg.type === 'close') {
      await backend.close().catch(() => undefined);
      send({ type: 'closed' });
      port.close();
      return;
    }
    const flags = msg.requests.map((r) => new Int32Array(r.flag));
    try {
      const results = await backend.runBatch(msg.requests.map((r) => r.input), batchSignal(flags));
      send({
        type: 'done',
        batchId: msg.batchId,
        results: results.map((r) => (r.ok ? r : { ok: false as const, error: toWireError(r.error) })),
      });
    } catch (err) {
      const error = toWireError(err);
      send({ type: 'done', batchId: msg.batchId, results: msg.requests.map(() => ({ ok: false as const, error })) });
    }
  });
}

void main();
