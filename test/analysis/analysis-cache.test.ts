import { describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../../src/analysis/analyse.js';
import { AnalysisCache, analysisKey, analysisSubject, waitFor } from '../../src/analysis/analysis-cache.js';
import { NoUsableImages } from '../../src/analysis/no-usable-images.js';
import { imageReferences } from '../../src/imaging/references.js';
import type { ImageRef } from '../../src/imaging/types.js';
import type { PatientContext } from '../../src/evidence/types.js';

const result = (n: number) => ({ timings: { modelMs: n, questions: 1 } }) as unknown as AnalysisResult;
const patient = (age: number) => ({ ageYears: age, sex: 'female', conditions: [], medications: [], notes: [], visualAcuity: {}, iop: {} }) as unknown as PatientContext;
const listed = (refs: string[], age = 60) => ({ references: refs, context: { patient: patient(age) } });

describe('analysis cache', () => {
  it('identifies a patient by EHR and id', () => {
    expect(analysisSubject('https://ehr-a.example/fhir/', 'p1')).toBe('https://ehr-a.example/fhir|Patient/p1');
    expect(analysisSubject('https://ehr-a.example/fhir', 'p1')).not.toBe(analysisSubject('https://ehr-b.example/fhir', 'p1'));
    // The hook's fhirServer and the launch's iss name the same base in different spellings.
    expect(analysisSubject('https://EHR-A.example:443/fhir/', 'p1')).toBe(analysisSubject('https://ehr-a.example/fhir', 'p1'));
  });

  it('keys on subject, image references (in any order), case-text inputs, model and task set — not on the encounter', () => {
    const k = analysisKey('p1', listed(['a', 'b']), 'm', 't');
    expect(analysisKey('p1', listed(['b', 'a']), 'm', 't')).toBe(k);
    for (const other of [analysisKey('p2', listed(['a', 'b']), 'm', 't'), analysisKey('p1', listed(['a']), 'm', 't'), analysisKey('p1', listed(['a', 'b'], 61), 'm', 't'), analysisKey('p1', listed(['a', 'b']), 'm2', 't'), analysisKey('p1', listed(['a', 'b']), 'm', 't2')]) {
      expect(other).not.toBe(k);
    }
  });

  it('keeps a "no usable images" outcome for its pause, then tries again', async () => {
    let now = 0;
    const cache = new AnalysisCache({ ttlMs: 1e6, maxEntries: 10, now: () => now });
    let runs = 0;
    const failing = cache.getOrStart('k', 's', async () => {
      runs++;
      throw new NoUsableImages([], 1000);
    });
    await expect(failing.promise).rejects.toBeInstanceOf(NoUsableImages);
    expect(failing.failure?.error).toBeInstanceOf(NoUsableImages);
    expect(cache.getOrStart('k', 's', async () => result(++runs))).toBe(failing); // not fetched again yet
    now = 1000;
    const again = cache.getOrStart('k', 's', async () => result(++runs));
    expect(again).not.toBe(failing);
    await again.promise;
    expect(runs).toBe(2);
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

  it('image references: order-free, URL queries left out, versions and inline data told apart', () => {
    const refs: ImageRef[] = [
      { eye: 'right', modality: 'OP', resourceType: 'ImagingStudy', source: { kind: 'dicomweb', study: '1.2.3', series: '1.2.3.4', instance: '1.2.3.4.5' } },
      { eye: 'left', resourceType: 'Media', fhirRef: 'Media/m1', version: '3', source: { kind: 'attachment', url: 'https://ehr.example/Binary/b1?_format=x' } },
    ];
    const list = imageReferences(refs);
    expect(imageReferences([...refs].reverse())).toEqual(list);
    expect(list.join(' ')).not.toContain('_format');
    expect(imageReferences([refs[0]!, { ...refs[1]!, version: '4' }])).not.toEqual(list); // re-recorded: another image
    const inline = (data: string): ImageRef => ({ eye: 'left', resourceType: 'Media', fhirRef: 'Media/m2', source: { kind: 'attachment', data } });
    expect(imageReferences([inline('AAAA')])).not.toEqual(imageReferences([inline('BBBB')]));
  });
});
