/**
 * A scripted backend for engine tests, loaded inside the worker thread. `modelDir` carries the script:
 * `fake:` + comma-separated `blockMs=N` (each decoder run blocks the thread N ms, as ORT does),
 * `fail` (load fails), `crash` (the worker dies on its first batch), `crashOnce=<file>` (dies on a batch while
 * that file exists, deleting it first: the replacement worker then serves).
 */
import { existsSync, unlinkSync } from 'node:fs';
import { ModelLoadError } from '../../src/model/runtime/load-error.js';
import { runExams, type EncodedExam } from '../../src/model/runtime/exam.js';
import type { BackendOptions, InferenceBackend } from '../../src/model/runtime/backend.js';
import { FAKE_SPEC, fakeSession } from './runtime-fake-session.js';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export async function loadBackend(opts: BackendOptions): Promise<InferenceBackend> {
  const script = new Map(opts.modelDir.replace(/^fake:/, '').split(',').map((kv) => kv.split('=') as [string, string]));
  if (script.has('fail')) throw new ModelLoadError('checksum_mismatch', 'decoder.onnx: sha256 does not match the manifest', { file: 'decoder.onnx' });
  const blockMs = Number(script.get('blockMs') ?? 0);
  const session = fakeSession();
  const run = session.run.bind(session);
  session.run = async (feeds) => {
    if (blockMs) Atomics.wait(sleeper, 0, 0, blockMs);
    return run(feeds);
  };
  let batches = 0;
  return {
    info: { name: 'fake', version: '0', random: true, manifestSha256: 'x', executionProvider: 'cpu', dtype: 'fp32' },
    async runBatch(inputs, signal) {
      if (script.has('crash')) process.exit(3);
      const once = script.get('crashOnce');
      if (once && existsSync(once)) {
        unlinkSync(once);
        process.exit(3);
      }
      batches++;
      const exams: EncodedExam[] = inputs.map((input) => ({
        questions: input.questions.map((q) => ({
          id: q.id,
          ids: [1, 2, 3, ...[...q.text].map((c) => c.charCodeAt(0) % 16)],
          maxNewTokens: q.answer.kind === 'text' ? (q.answer.maxNewTokens ?? 8) : 1,
          candidates: q.answer.kind === 'choice' ? q.answer.candidates.map((label, i) => ({ label, tokenId: i })) : undefined,
        })),
      }));
      const raw = await runExams(session, FAKE_SPEC, exams, { stopIds: [], signal });
      return raw.map((answers) => ({
        ok: true as const,
        answers: answers.map((a) => ({ ...a, text: `${a.tokens.join(' ')} batch=${batches} rows=${Math.max(...session.runs.map((r) => r.B))}`, tokenIds: a.tokens })),
      }));
    },
    async close() {},
  };
}
