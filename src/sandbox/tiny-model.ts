/**
 * The sandbox's default model: the tiny random-weight VOLMO-shaped model the project builds itself (no
 * download), so that `npm start` shows the whole pipeline. Every card, page and report it produces says
 * TEST MODEL WITH RANDOM WEIGHTS — it is never clinical output.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { buildModel } from '../model/build/build-model.js';
import { writeTinySnapshot } from '../model/tiny.js';

export async function ensureTinyModel(stateDir: string, log: Logger): Promise<string> {
  const root = join(stateDir, 'models');
  const out = join(root, 'volmo-tiny');
  if (!existsSync(join(out, 'manifest.json'))) {
    const snapshot = join(root, 'volmo-tiny-snapshot');
    writeTinySnapshot(snapshot, { seed: 1234 });
    await buildModel(snapshot, out);
    log.info({ dir: out }, 'built the tiny test model for the sandbox');
  }
  log.warn({ dir: out }, 'the sandbox runs the TINY TEST MODEL WITH RANDOM WEIGHTS: its output is labelled and is not clinical (set VOLMO_MODEL_DIR for a real model)');
  return out;
}
