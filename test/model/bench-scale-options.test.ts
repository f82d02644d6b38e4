/** `npm run bench -- scale` options: which model it runs, and clear refusals of bad options (nothing is built). */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runScaleBench, scaleModel } from '../../bench/scale.js';

describe('bench scale: model and options', () => {
  it('refuses a --model that is neither tiny, bench nor a built model, bad --layers / --dtype, and a bad --exams', async () => {
    await expect(scaleModel(['--model=/nonexistent/model'])).rejects.toThrow(/--model=\/nonexistent\/model: not a built model directory \(no manifest\.json\); use tiny, bench or a directory/);
    await expect(scaleModel(['--model=bench', '--layers=0'])).rejects.toThrow(/--layers must be an integer 1\.\.24/);
    await expect(scaleModel(['--model=bench', '--layers=2.5'])).rejects.toThrow(/--layers must be an integer 1\.\.24/);
    await expect(scaleModel(['--model=bench', '--dtype=fp8'])).rejects.toThrow(/--dtype must be fp32, fp16 or int4/);
    await expect(runScaleBench(['--exams=0'])).rejects.toThrow(/--exams must be a positive integer/);
    await expect(runScaleBench(['--exams=many'])).rejects.toThrow(/--exams must be a positive integer/);
  });

  it('a built model directory is used as given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volmo-scale-opt-'));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'manifest.json'), '{}');
    expect(await scaleModel([`--model=${dir}`])).toEqual({ dir, what: `model ${dir}` });
  });
});
