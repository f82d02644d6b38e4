import { describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../../src/analysis/analyse.js';
import { AnalysisCache, analysisKey, analysisSubject, referencesKey, waitFor } from '../../src/analysis/analysis-cache.js';
import { imageReferences } from '../../src/imaging/references.js';
import type { ImageRef } from '../../src/imaging/types.js';
import type { EvidenceBundle } from '../../src/evidence/types.js';

const result = (n: number) => ({ timings: { modelMs: n, questions: 1 } }) as unknown as AnalysisResult;
const evidence = (hash: string) =>
  ({ images: { right: [{ eye: 'right', contentHash: hash, gradability: { status: 'gradable' } }], left: [], unknown: [] }, caseText: 'x' }) as unknown as EvidenceBundle;

describe('analysis cache', () => {
  it('identifies a patient by EHR and id', () => {
    expect(analysisSubject('https://ehr-a.example/fhir/', 'p1')).toBe('https://ehr-a.example/fhir|Patient/p1');
    expect(analysisSubject('https://ehr-a.example/fhir', 'p1')).not.toBe(analysisSubject('https://ehr-b.example/fhir', 'p1'));
    // The hook's fhirServer and the launch's iss name the same base in different spellings.
    expect(analysisSubject('https://EHR-A.example:443/fhir/', 'p1')).toBe(analysisSubject('https://ehr-a.example/fhir', 'p1'));
  });

  it('keys on patient, image content, case text, model and task set', () => {
    const k = analysisKey('p1', undefined, evidence('a'), 'm', 't');
    expect(analysisKey('p1', undefined, evidence('a'), 'm', 't')).toBe(k);
    for (const other of [analysisKey('p2', undefined, evidence('a'), 'm', 't'), analysisKey('p1', undefined, evidence('b'), 'm', 't'), analysisKey('p1', undefined, evidence('a'), 'm2', 't'), analysisKey('p1', undefined, evidence('a'), 'm', 't2'), analysisKey('p1', 'enc-2', evidence('a'), 'm', 't')]) {
      expect(other).not.toBe(k);
    }
  });

  it('runs once per key, keeps the result under a stable id, and retries after a failure', async () => {
    let now = 0;
    const cache = new AnalysisCache({ ttlMs: 1000, maxEntries: 10, now: () => now });
    let runs = 0;
    const a = cache.getOrStart('k', 's', async () => result(++runs));
    const b = cache.getOrStart('k', 's', async () => result(++runs));
    expect(b).toBe(a);
    await a.promise;
    expect(runs).toBe(1);
    expect(cache.get(a.id)).toBe(a.result);
    const failing = cache.getOrStart('bad', 's', async () => Promise.reject(new Error('model died')));
    await expect(failing.promise).rejects.toThrow('model died');
    const retry = cache.getOrStart('bad', 's', async () => result(++runs));
    expect(retry).not.toBe(failing);
    await retry.promise;
    now = 5000; // expired
    expect(cache.get(a.id)).toBeUndefined();
    expect(cache.getOrStart('k', 's', async () => result(++runs))).not.toBe(a);
  });

  it('is bounded', () => {
    const cache = new AnalysisCache({ ttlMs: 1e9, maxEntries: 3 });
    const first = cache.getOrStart('0', 's', async () => result(0));
    for (let i = 1; i < 10; i++) cache.getOrStart(String(i), 's', async () => result(i));
    expect(cache.getOrStart('0', 's', async () => result(0))).not.toBe(first);
  });

  it('waitFor gives up after the wait and on abort, without cancelling the work', async () => {
    expect(await waitFor(new Promise(() => {}), 10_000, AbortSignal.abort())).toBeUndefined();
    let resolve!: (v: number) => void;
    const slow = new Promise<number>((r) => (resolve = r));
    expect(await waitFor(slow, 20)).toBeUndefined();
    const ac = new AbortController();
    const waiting = waitFor(slow, 10_000, ac.signal);
    ac.abort();
    expect(await waiting).toBeUndefined();
    resolve(7);
    expect(await waitFor(slow, 20)).toBe(7);
  });

  it('finds a finished analysis by its image references: same subject, model and tasks only; not while running or after expiry', async () => {
    const refs: ImageRef[] = [
      { eye: 'right', modality: 'OP', resourceType: 'ImagingStudy', source: { kind: 'dicomweb', study: '1.2.3', series: '1.2.3.4', instance: '1.2.3.4.5' } },
      { eye: 'left', resourceType: 'Media', fhirRef: 'Media/m1', source: { kind: 'attachment', url: 'https://ehr.example/Binary/b1?_format=x' } },
    ];
    const list = imageReferences(refs);
    expect(imageReferences([...refs].reverse())).toEqual(list); // order-free
    expect(list.join(' ')).not.toContain('_format'); // URL queries are not part of the reference
    const key = referencesKey('s', list, 'm', 't')!;
    expect(referencesKey('s', [], 'm', 't')).toBeUndefined();
    for (const other of [referencesKey('s2', list, 'm', 't'), referencesKey('s', list, 'm2', 't'), referencesKey('s', list, 'm', 't2'), referencesKey('s', list.slice(1), 'm', 't')]) expect(other).not.toBe(key);
    let now = 0;
    const cache = new AnalysisCache({ ttlMs: 1000, maxEntries: 10, now: () => now });
    let finish!: (r: AnalysisResult) => void;
    const entry = cache.getOrStart('content-key', 's', () => new Promise((r) => (finish = r)), { referencesKey: key });
    expect(cache.findByReferences(key)).toBeUndefined(); // still running
    finish(result(1));
    await entry.promise;
    expect(cache.findByReferences(key)).toMatchObject({ id: entry.id, result: entry.result });
    expect(cache.findByReferences(referencesKey('s2', list, 'm', 't'))).toBeUndefined();
    now = 5000;
    expect(cache.findByReferences(key)).toBeUndefined();
  });
});
