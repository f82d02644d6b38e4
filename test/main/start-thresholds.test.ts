/** The service loads VOLMO_FINDINGS_THRESHOLDS_FILE at start-up and warns when it was measured on another model build. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startService } from '../../src/main.js';
import { buildTiny } from '../model/model-harness.js';

let modelDir: string;
let sha: string;
beforeAll(async () => {
  const tiny = await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-thr-model-')) });
  modelDir = tiny.outDir;
  const { createHash } = await import('node:crypto');
  sha = createHash('sha256').update(readFileSync(join(modelDir, 'manifest.json'))).digest('hex');
}, 120_000);

async function startWith(manifestSha256: string): Promise<string> {
  const file = join(mkdtempSync(join(tmpdir(), 'volmo-thr-')), 'thresholds.json');
  writeFileSync(file, JSON.stringify({
    kind: 'volmo-findings-thresholds', version: 1, model: { name: 'volmo-tiny', version: 'x', manifestSha256, random: true },
    screening: { amd: { lower: 0.2, upper: 0.65 } },
  }));
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (c: Buffer) => lines.push(c.toString()));
  const config = loadConfig({ VOLMO_SANDBOX: 'false', VOLMO_PORT: '0', VOLMO_DATABASE_URL: 'memory:', VOLMO_MODEL_DIR: modelDir, VOLMO_FINDINGS_THRESHOLDS_FILE: file });
  const svc = await startService(config, createLogger({ destination: stream, level: 'info' }));
  await svc.close();
  return lines.join('');
}

describe('site operating points at start-up', () => {
  it('logs that they are loaded; warns only when the model build differs', async () => {
    const same = await startWith(sha);
    expect(same).toMatch(/site operating points loaded/);
    expect(same).not.toMatch(/measured on another model build/);
    expect(await startWith('0'.repeat(64))).toMatch(/measured on another model build/);
  }, 120_000);
});
