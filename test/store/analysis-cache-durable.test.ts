/** AnalysisCache over a durable store (SQLite): what a second process (or replica) sees of the first's work. */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AnalysisCache } from '../../src/analysis/analysis-cache.js';
import type { AnalysisStore, VolmoStore } from '../../src/store/port.js';
import { fakeResult, open, tempDir, writeKeyFile } from './helpers.js';

const identity = { references: ['dicom:1.2.3'], modelSha: 'm1' };
const stores: VolmoStore[] = [];

async function sqlite(): Promise<{ url: string; key: string; store: VolmoStore }> {
  const d = tempDir();
  const url = `sqlite:${join(d, 'v.db')}`;
  const key = writeKeyFile(d);
  const store = await open(url, key);
  stores.push(store);
  return { url, key, store };
}

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe('AnalysisCache with a durable store', () => {
  it('a new process answers the stored analysis without running anything; the SMART app lists it', async () => {
    const { url, key, store } = await sqlite();
    const first = new AnalysisCache({ ttlMs: 60_000, maxEntries: 10, durable: store.analyses });
    const e1 = await first.findOrStart('k', 'ehr|Patient/p1', identity, async () => fakeResult('finding A'));
    await e1.promise;
    expect(await store.analyses.findById(e1.id)).toMatchObject({ key: 'k', references: identity.references, modelSha: 'm1' });
    await store.close();
    stores.pop();

    const reopened = await open(url, key);
    stores.push(reopened);
    const second = new AnalysisCache({ ttlMs: 60_000, maxEntries: 10, durable: reopened.analyses });
    let runs = 0;
    const e2 = await second.findOrStart('k', 'ehr|Patient/p1', identity, async () => {
      runs++;
      return fakeResult('should not run');
    });
    expect(runs).toBe(0);
    expect(e2.id).toBe(e1.id);
    expect(e2.result?.report.note.text).toBe('finding A');
    expect((await second.recentForSubject('ehr|Patient/p1')).map((d) => d.id)).toEqual([e1.id]);
    expect(await second.recentForSubject('ehr|Patient/p2')).toEqual([]);
  });

  it('the result is in the store before it is shown; a second-stage update is written through', async () => {
    const { store } = await sqlite();
    const cache = new AnalysisCache({ ttlMs: 60_000, maxEntries: 10, durable: store.analyses });
    let storedWhenShown: unknown;
    const entry = await cache.findOrStart('k2', 's', identity, async () => fakeResult('first stage'), {
      onStored: (e) => void store.analyses.findById(e.id).then((found) => (storedWhenShown = found?.result.report.note.text)),
    });
    await entry.promise;
    await new Promise((r) => setTimeout(r, 20));
    expect(storedWhenShown).toBe('first stage');
    expect(cache.update(entry.id, fakeResult('with the second stage'))).toBe(true);
    await cache.flush();
    expect((await store.analyses.findById(entry.id))?.result.report.note.text).toBe('with the second stage');
  });

  it('a store that cannot be read: the analysis runs here and is still answered', async () => {
    const broken: AnalysisStore = {
      findByKey: async () => Promise.reject(Object.assign(new Error('down'), { code: 'ECONNRESET' })),
      findById: async () => undefined,
      save: async () => Promise.reject(new Error('down')),
      update: async () => false,
      latestForSubject: async () => Promise.reject(new Error('down')),
    };
    const cache = new AnalysisCache({ ttlMs: 60_000, maxEntries: 10, durable: broken });
    const entry = await cache.findOrStart('k3', 's', identity, async () => fakeResult('local'));
    expect((await entry.promise).report.note.text).toBe('local');
    expect(entry.result?.report.note.text).toBe('local');
    expect((await cache.recentForSubject('s')).map((d) => d.id)).toEqual([entry.id]);
  });

  it('concurrent callers for one identity start one run', async () => {
    const { store } = await sqlite();
    const cache = new AnalysisCache({ ttlMs: 60_000, maxEntries: 10, durable: store.analyses });
    let runs = 0;
    const run = async () => {
      runs++;
      return fakeResult('once');
    };
    const entries = await Promise.all(Array.from({ length: 5 }, () => cache.findOrStart('k4', 's', identity, run)));
    expect(new Set(entries.map((e) => e.id)).size).toBe(1);
    expect(runs).toBe(1);
  });
});
