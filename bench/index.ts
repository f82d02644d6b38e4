/**
 * `npm run bench [part ...] [--full]`: runs the benchmark parts and prints one table each. Every part
 * measures its baseline in the same run and reports ratios against it (these machines are shared and noisy).
 */
import '../src/platform/no-telemetry.js'; // first: onnxruntime telemetry off before any bench part loads it
import os from 'node:os';
import { formatTable, type BenchTable } from './table.js';

type Part = (args: string[]) => Promise<BenchTable[]>;

const PARTS: Record<string, () => Promise<Part>> = {
  runtime: async () => (await import('./runtime.js')).runRuntimeBench,
  attention: async () => (await import('./attention.js')).runAttentionBench,
  evidence: async () => (await import('./evidence.js')).runEvidenceBench,
  hooks: async () => (await import('./hooks.js')).runHooksBench,
  scale: async () => (await import('./scale.js')).runScaleBench,
  imaging: async () => {
    const { runImagingBench, runPixelBench } = await import('./imaging.js');
    return async () => {
      const pixelRows = await runPixelBench(3);
      const mainMs = pixelRows.find((r) => r.where === 'main thread')!.msPerFrame;
      const rows = await runImagingBench(10);
      const base = new Map(rows.filter((r) => r.path === 'decode-then-resize').map((r) => [r.input, r.msPerImage]));
      return [
        {
          title: 'Image checks before the model (probe + decode + gradability + hash), per image',
          columns: ['input', 'path', 'ms/image', 'images/s', 'speed-up vs decode-then-resize'],
          rows: rows.map((r) => [r.input, r.path, r.msPerImage, r.imagesPerSecond, base.has(r.input) ? `${(base.get(r.input)! / r.msPerImage).toFixed(2)}x` : '—']),
          notes: ['baseline: full decode to raw pixels with sharp, then resize, then the same gate (measured in the same run)'],
        },
        {
          title: '7000x7000 16-bit native DICOM frame to 8-bit (toEightBit), per frame',
          columns: ['where', 'ms/frame', 'max event-loop lag ms', 'time vs main thread'],
          rows: pixelRows.map((r) => [r.where, r.msPerFrame, r.maxLagMs, `${(r.msPerFrame / mainMs).toFixed(2)}x`]),
          notes: ['baseline: the same loop in the event loop (before issue 14); the worker gets the frame as a moved ArrayBuffer (measured in the same run)'],
        },
      ];
    };
  },
};

export async function runBench(args: string[]): Promise<number> {
  const names = args.filter((a) => !a.startsWith('--'));
  const selected = names.length ? names : Object.keys(PARTS);
  const unknown = selected.filter((n) => !(n in PARTS));
  if (unknown.length) {
    console.error(`unknown bench part(s): ${unknown.join(', ')}; known: ${Object.keys(PARTS).join(', ')}`);
    return 2;
  }
  console.log(`# volmo-cds benchmarks — ${new Date().toISOString()} — node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB\n`);
  let failed = 0;
  for (const name of selected) {
    try {
      const part = await PARTS[name]!();
      for (const table of await part(args)) console.log(`${formatTable(table)}\n`);
    } catch (e) {
      failed++;
      console.error(`bench part ${name} failed: ${(e as Error).stack ?? String(e)}`);
    }
  }
  return failed ? 1 : 0;
}
