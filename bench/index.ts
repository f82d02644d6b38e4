/**
 * `npm run bench [part ...] [--full]`: runs the benchmark parts and prints one table each. Every part
 * measures its baseline in the same run and reports ratios against it (these machines are shared and noisy).
 */
import os from 'node:os';
import { formatTable, type BenchTable } from './table.js';

type Part = (args: string[]) => Promise<BenchTable[]>;

const PARTS: Record<string, () => Promise<Part>> = {
  runtime: async () => (await import('./runtime.js')).runRuntimeBench,
  imaging: async () => (await import('./imaging.js')).runImagingBench,
  evidence: async () => (await import('./evidence.js')).runEvidenceBench,
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
