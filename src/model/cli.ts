/**
 * `volmo model ...` subcommands: `tiny <out>`, `build <snapshot> <out> [--dtype fp32|fp16|int4|int8] [--activations fp32|int8]
 * [--vision fp32|fp16|int4|int8] [--external-data] [--allow-unused]`,
 * `bench-snapshot <out> --layers N [--vision-layers M]`. Returns the process exit code.
 */
import '../platform/no-telemetry.js'; // first: onnxruntime telemetry off before anything can load it
import { isAppError } from '../errors.js';
import { createLogger } from '../log.js';
import { writeBenchSnapshot } from './bench-snapshot.js';
import { buildModel } from './build/build-model.js';
import type { WeightDtype } from './build/linear.js';
import { writeTinySnapshot } from './tiny.js';

const USAGE = `usage:
  volmo model tiny <out-dir> [--seed N]
  volmo model build <snapshot-dir> <out-dir> [--dtype fp32|fp16|int4|int8] [--activations fp32|int8]
                    [--vision fp32|fp16|int4|int8] [--external-data] [--max-tiles N] [--allow-unused]
  volmo model bench-snapshot <out-dir> --layers N [--vision-layers M] [--seed N]
`;

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

function parseArgs(args: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('--')) {
      const [k, inline] = a.slice(2).split('=', 2);
      if (inline !== undefined) flags.set(k, inline);
      else if (k === 'external-data' || k === 'allow-unused' || k === 'help') flags.set(k, true);
      else if (i + 1 < args.length) flags.set(k, args[++i]);
      else throw new UsageError(`--${k} needs a value`);
    } else positional.push(a);
  }
  return { positional, flags };
}

class UsageError extends Error {}

function intFlag(p: Parsed, name: string, fallback?: number): number | undefined {
  const v = p.flags.get(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v === true || !Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer`);
  return n;
}

function stringFlag(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  if (v === true) throw new UsageError(`--${name} needs a value`);
  return v;
}

/** `logLevel`: VOLMO_LOG_LEVEL, read by the configuration (src/cli.ts passes it on). */
export async function runModelCli(args: string[], opts: { logLevel?: string } = {}): Promise<number> {
  const log = createLogger({ name: 'volmo-model', destination: process.stderr, level: opts.logLevel ?? 'info' });
  try {
    const [cmd, ...rest] = args;
    const p = parseArgs(rest);
    if (!cmd || p.flags.has('help')) {
      process.stdout.write(USAGE);
      return cmd ? 0 : 2;
    }
    switch (cmd) {
      case 'tiny': {
        if (p.positional.length !== 1) throw new UsageError('tiny needs <out-dir>');
        const { tokenizer } = writeTinySnapshot(p.positional[0], { seed: intFlag(p, 'seed', 1234) });
        process.stdout.write(`tiny snapshot written to ${p.positional[0]}${tokenizer ? '' : ' (no tokenizer fixture found)'}\n`);
        return 0;
      }
      case 'build': {
        if (p.positional.length !== 2) throw new UsageError('build needs <snapshot-dir> <out-dir>');
        const dtype = (p.flags.get('dtype') ?? 'fp32') as WeightDtype;
        if (!['fp32', 'fp16', 'int4', 'int8'].includes(dtype)) throw new UsageError('--dtype must be fp32, fp16, int4 or int8');
        const res = await buildModel(p.positional[0], p.positional[1], {
          dtype,
          externalData: p.flags.get('external-data') === true,
          maxTiles: intFlag(p, 'max-tiles'),
          allowUnused: p.flags.get('allow-unused') === true,
          activations: stringFlag(p, 'activations'),
          vision: stringFlag(p, 'vision'),
          logger: log,
        });
        const q = res.manifest.quantization;
        const what = `${res.manifest.dtype}${q ? `, ${q.activations} activations, vision ${q.vision}` : ''}${res.manifest.random ? ', RANDOM WEIGHTS' : ''}`;
        process.stdout.write(`built ${res.manifest.modelName} (${what}) in ${res.outDir}\n`);
        return 0;
      }
      case 'bench-snapshot': {
        if (p.positional.length !== 1) throw new UsageError('bench-snapshot needs <out-dir>');
        const layers = intFlag(p, 'layers');
        if (!layers) throw new UsageError('bench-snapshot needs --layers N (1..24)');
        writeBenchSnapshot(p.positional[0], { layers, visionLayers: intFlag(p, 'vision-layers'), seed: intFlag(p, 'seed') });
        process.stdout.write(`benchmark snapshot (${layers} layers, random weights) written to ${p.positional[0]}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown model command: ${cmd}`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof RangeError) {
      process.stderr.write(`${err.message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`error: ${isAppError(err) ? err.message : (err as Error).message}\n`);
    return 1;
  }
}
