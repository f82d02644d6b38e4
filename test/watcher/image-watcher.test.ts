import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { ImageWatcher, type MarkStore, type PatientOutcome, type WatchSource } from '../../src/watcher/image-watcher.js';
import { FileMarkStore } from '../../src/watcher/mark-file.js';

class MemoryMarks implements MarkStore {
  readonly marks = new Map<string, string>();
  async get(s: string) {
    return this.marks.get(s);
  }
  async set(s: string, m: string) {
    this.marks.set(s, m);
  }
}

/** A source answering from a script of batches (or errors), recording the marks it was asked with. */
function scripted(name: string, script: (Error | { patients: string[]; mark?: string })[]): WatchSource & { asked: (string | undefined)[] } {
  const asked: (string | undefined)[] = [];
  return {
    name,
    asked,
    async poll(mark) {
      asked.push(mark);
      const next = script.shift() ?? { patients: [] };
      if (next instanceof Error) throw next;
      return next;
    },
  };
}

describe('image watcher', () => {
  it('queues each new patient once, one at a time, and saves the mark only after the batch is queued', async () => {
    const source = scripted('s', [{ patients: ['p1', 'p2', 'p1'], mark: 'm1' }, { patients: ['p2'], mark: 'm2' }]);
    const marks = new MemoryMarks();
    const running: string[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const watcher = new ImageWatcher({
      sources: [source],
      marks,
      log: silentLogger(),
      intervalMs: 60_000,
      analysePatient: async (p): Promise<PatientOutcome> => {
        running.push(p);
        maxConcurrent = Math.max(maxConcurrent, ++concurrent);
        await new Promise((r) => setTimeout(r, 20));
        concurrent--;
        return 'analysed';
      },
    });
    expect(await watcher.pollOnce()).toBe(true);
    expect(marks.marks.get('s')).toBe('m1');
    await watcher.drained();
    expect(running).toEqual(['p1', 'p2']);
    expect(maxConcurrent).toBe(1);
    await watcher.pollOnce();
    await watcher.drained();
    expect(source.asked).toEqual([undefined, 'm1']);
    expect(running).toEqual(['p1', 'p2', 'p2']); // a patient seen again later is handled again (the pipeline knows it)
    await watcher.stop();
  });

  it('backs off after errors (mark kept), counts outcomes, and a failing analysis does not stop the others', async () => {
    const source = scripted('s', [new Error('FHIR down'), new Error('FHIR down'), { patients: ['bad', 'good'], mark: 'm' }]);
    const marks = new MemoryMarks();
    const outcomes: string[] = [];
    const seen: number[] = [];
    const watcher = new ImageWatcher({
      sources: [source],
      marks,
      log: silentLogger(),
      intervalMs: 10,
      maxBackoffMs: 50,
      counters: { seen: (_s, n) => seen.push(n), outcome: (o) => outcomes.push(o) },
      analysePatient: async (p) => {
        if (p === 'bad') throw new Error('model died');
        return 'analysed';
      },
    });
    const t0 = Date.now();
    watcher.start();
    for (let i = 0; i < 200 && outcomes.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    await watcher.stop();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(20 + 40); // 10·2¹ + 10·2² of backoff before the third poll
    expect(outcomes.sort()).toEqual(['analysed', 'failed']);
    expect(seen[0]).toBe(2);
    expect(marks.marks.get('s')).toBe('m');
  });

  it('keeps marks in a file across restarts (written atomically)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'volmo-marks-')), 'sub', 'marks.json');
    const a = new FileMarkStore(file);
    expect(await a.get('fhir')).toBeUndefined();
    await a.set('fhir', '2026-12-04T10:00:00Z');
    await a.set('pacs', '{"from":"20261204","seen":[]}');
    const b = new FileMarkStore(file);
    expect(await b.get('fhir')).toBe('2026-12-04T10:00:00Z');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ fhir: '2026-12-04T10:00:00Z', pacs: '{"from":"20261204","seen":[]}' });
  });
});
