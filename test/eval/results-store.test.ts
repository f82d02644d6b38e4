/** The resumable results file: continue, drop a torn line, set aside (never delete) results of another model. */
import { existsSync, mkdtempSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openResults, RESULTS_FILE } from '../../src/eval/results-store.js';
import type { ImageResult } from '../../src/eval/types.js';

const fp = { manifestSha256: 'a'.repeat(64), modelName: 'm', taskSetVersion: 't/1', maxTiles: 6 };
const result = (key: string): ImageResult => ({ key, fileSha256: 'f'.repeat(64), outcome: 'rejected', reasons: ['corrupt'] });

describe('results store', () => {
  it('keeps finished images for the next run', () => {
    const out = mkdtempSync(join(tmpdir(), 'volmo-store-'));
    const first = openResults(out, fp);
    expect(first.done.size).toBe(0);
    first.append(result('a.jpg'));
    first.append(result('b.jpg'));
    const again = openResults(out, fp);
    expect([...again.done.keys()]).toEqual(['a.jpg', 'b.jpg']);
    expect(again.invalidated).toBeUndefined();
  });

  it('drops a line cut short by an interrupted run and appends on a fresh line', () => {
    const out = mkdtempSync(join(tmpdir(), 'volmo-store-'));
    openResults(out, fp).append(result('a.jpg'));
    appendFileSync(join(out, RESULTS_FILE), '{"key":"b.jp');
    const s = openResults(out, fp);
    expect([...s.done.keys()]).toEqual(['a.jpg']);
    s.append(result('c.jpg'));
    expect([...openResults(out, fp).done.keys()]).toEqual(['a.jpg', 'c.jpg']);
  });

  it('another model (or tile cap, or task set) sets the old results aside and starts again', () => {
    const out = mkdtempSync(join(tmpdir(), 'volmo-store-'));
    openResults(out, fp).append(result('a.jpg'));
    const s = openResults(out, { ...fp, manifestSha256: 'b'.repeat(64) }, () => new Date('2025-01-02T03:04:05Z'));
    expect(s.done.size).toBe(0);
    expect(s.invalidated).toMatchObject({ reason: expect.stringMatching(/the model changed/), results: 1 });
    expect(existsSync(s.invalidated!.movedTo)).toBe(true);
    expect(readFileSync(s.invalidated!.movedTo, 'utf8')).toMatch(/a\.jpg/);
    expect(openResults(out, { ...fp, manifestSha256: 'b'.repeat(64), maxTiles: 1 }).invalidated!.reason).toMatch(/tile cap/);
    writeFileSync(join(out, RESULTS_FILE), 'not json\n');
    expect(openResults(out, fp).invalidated!.reason).toMatch(/no valid header/);
  });
});
