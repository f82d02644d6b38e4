/**
 * `volmo eval <dataset> [--layout csv|idrid|octdl] [--out DIR] [--model DIR] [--target-sensitivity P] …`:
 * arguments and configuration -> runEval. Returns the process exit code (0 done, 2 usage, 1 failure,
 * 78 configuration).
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { isAppError } from '../errors.js';
import { siteThresholdOverrides } from '../findings/site-thresholds.js';
import { createLogger } from '../log.js';
import { runEval } from './run.js';
import { LAYOUTS, type Layout } from './types.js';

export const EVAL_USAGE = `usage: volmo eval <dataset-dir> [options]

Runs the model over a labelled image set through the service's own image checks, exam and findings code,
and writes eval.json, eval.html, reliability.png and thresholds.json (site operating points).

options:
  --layout csv|idrid|octdl     dataset layout (default: detected)
  --out DIR                    output folder; per-image results are kept there and a re-run resumes (default: volmo-eval)
  --model DIR                  built model directory (default: VOLMO_MODEL_DIR)
  --target-sensitivity P       sensitivity the site thresholds are chosen for (default 0.9)
  --bootstrap N                bootstrap resamples for the 95% intervals (default 1000; 0 = none)
  --seed N                     bootstrap seed (default 1)
  --bins N                     calibration bins (default 10)
  --progress-every N           without a terminal: one progress line per N images (default 10)
  --image-timeout-s S          time budget of one image's exam (default 1800)

layouts (docs/clinical-logic.md, "Site validation"):
  csv    labels.csv: image, laterality, modality, icdr_grade, macular_hole_stage, one TRUE/FALSE column per condition id
  idrid  IDRiD disease-grading CSV ("Image name", "Retinopathy grade", "Risk of macular edema") and its images
  octdl  one folder per OCTDL class (AMD, DME, ERM, NO, RAO, RVO, VID)`;

class UsageError extends Error {}

function numberFlag(v: string | undefined, name: string, fallback: number, check: (n: number) => boolean, what: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`--${name} must be ${what}`);
  return n;
}

const int = (lo: number) => (n: number) => Number.isInteger(n) && n >= lo;

export async function runEvalCli(args: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        layout: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' },
        'target-sensitivity': { type: 'string' }, bootstrap: { type: 'string' }, seed: { type: 'string' }, bins: { type: 'string' },
        'progress-every': { type: 'string' }, 'image-timeout-s': { type: 'string' }, help: { type: 'boolean' },
      },
    });
    if (values.help) {
      console.log(EVAL_USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('eval needs exactly one <dataset-dir>');
    if (values.layout !== undefined && !LAYOUTS.includes(values.layout as Layout)) throw new UsageError(`--layout must be one of ${LAYOUTS.join(', ')}`);
    const summary = {
      targetSensitivity: numberFlag(values['target-sensitivity'], 'target-sensitivity', 0.9, (n) => n > 0 && n <= 1, 'in (0, 1]'),
      resamples: numberFlag(values.bootstrap, 'bootstrap', 1000, int(0), 'a whole number >= 0'),
      seed: numberFlag(values.seed, 'seed', 1, int(0), 'a whole number >= 0'),
      bins: numberFlag(values.bins, 'bins', 10, (n) => int(2)(n) && n <= 100, 'a whole number 2–100'),
    };
    const progressEvery = numberFlag(values['progress-every'], 'progress-every', 10, int(1), 'a whole number >= 1');
    const imageTimeoutMs = 1000 * numberFlag(values['image-timeout-s'], 'image-timeout-s', 1800, (n) => n > 0, 'a positive number of seconds');
    const config = loadConfig(process.env);
    const modelDir = values.model ?? config.modelDir;
    if (!modelDir) throw new UsageError('no model: pass --model DIR or set VOLMO_MODEL_DIR');
    const log = createLogger({ level: 'warn', destination: process.stderr, name: 'volmo-eval' });
    await runEval({
      dataset: positionals[0]!,
      layout: values.layout as Layout | undefined,
      out: values.out ?? 'volmo-eval',
      summary,
      maxTiles: config.maxTiles,
      imageTimeoutMs,
      bands: {
        overrides: siteThresholdOverrides(config.findingsThresholds),
        source: config.findingsThresholds ? 'VOLMO_FINDINGS_THRESHOLDS_FILE' : 'defaults (docs/clinical-logic.md)',
      },
      openEngine: async () => {
        const { createEngine } = await import('../model/runtime/engine.js');
        return createEngine({ modelDir, executionProvider: config.executionProvider, workers: 1, log });
      },
      stdout: process.stdout,
      stderr: process.stderr,
      progressEvery,
    });
    return 0;
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      console.error(`${(e as Error).message}\n\n${EVAL_USAGE}`);
      return 2;
    }
    if (isAppError(e) && e.code === 'config_invalid') {
      console.error(e.message);
      return 78;
    }
    console.error(`volmo eval: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
