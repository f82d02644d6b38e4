/**
 * Issue 14: the hostile-image corpus (scripts/hostile-images.ts) through every image input path — FHIR
 * attachment inline data, FHIR attachment URL (served with the content type the corpus declares, which may
 * lie), and DICOMweb (a loopback PACS; no rendered fallback) — with the service's guarded fetch. Each input is
 * either accepted or refused with a reason that has plain words; nothing throws, nothing is an internal
 * error, and each input is handled in bounded time. The service-level pass (HTTP status, cards) is in
 * test/e2e/hook-degraded.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatherImages, type GatheredImages } from '../../src/imaging/gather.js';
import { PixelWorkerPool } from '../../src/imaging/pixel-workers.js';
import { reasonInWords } from '../../src/imaging/rejection.js';
import type { ImageRef } from '../../src/imaging/types.js';
import { createGuardedFetch, type GuardedFetch } from '../../src/net/guarded-fetch.js';
import { hostileCorpus, type HostileImage } from '../../scripts/hostile-images.js';
import { startFakeDicomWeb, type FakeDicomWeb } from './fake-dicomweb.js';

type Path = 'attachment-data' | 'attachment-url' | 'dicomweb';
const PATHS: Path[] = ['attachment-data', 'attachment-url', 'dicomweb'];
const PER_INPUT_MS = 30_000;

let corpus: HostileImage[];
let pacs: FakeDicomWeb;
let fetch: GuardedFetch;
const pixels = new PixelWorkerPool({ size: 1 });

const uid = (i: number) => `1.2.826.0.1.3680043.14.${i + 1}`;

beforeAll(async () => {
  corpus = await hostileCorpus();
  const files = new Map(corpus.map((h) => [h.name, { body: h.bytes, contentType: h.contentType }]));
  pacs = await startFakeDicomWeb(
    corpus.map((h, i) => ({ study: uid(i), series: `${uid(i)}.1`, sop: `${uid(i)}.1.1`, modality: 'OP', part10: h.bytes })),
    { files },
  );
  fetch = createGuardedFetch({ allow: [pacs.url, pacs.filesUrl], timeoutMs: 10_000 });
}, 120_000);
afterAll(async () => {
  fetch?.close();
  await pacs?.close();
  await pixels.close();
});

function refFor(path: Path, h: HostileImage, i: number): ImageRef {
  if (path === 'dicomweb') return { eye: 'unknown', resourceType: 'ImagingStudy', fhirRef: 'ImagingStudy/h', source: { kind: 'dicomweb', study: uid(i), series: `${uid(i)}.1`, instance: `${uid(i)}.1.1` } };
  const source = path === 'attachment-data' ? { kind: 'attachment' as const, data: h.bytes.toString('base64'), contentType: h.contentType } : { kind: 'attachment' as const, url: `${pacs.filesUrl}/${h.name}`, contentType: h.contentType };
  return { eye: 'unknown', resourceType: 'Media', fhirRef: 'Media/h', source };
}

type Outcome = { outcome: 'accepted'; detail: string } | { outcome: 'rejected'; reason: string };

function outcomeOf(g: GatheredImages): Outcome {
  const images = [...g.images.right, ...g.images.left, ...g.images.unknown];
  const refused = g.problems.filter((p) => p.kind === 'image_rejected' || p.kind === 'pacs_unreachable');
  expect(images.length + refused.length, JSON.stringify(g.problems)).toBe(1); // one input, one outcome
  expect(g.problems.every((p) => p.code !== 'internal'), JSON.stringify(g.problems)).toBe(true);
  if (images.length) return { outcome: 'accepted', detail: `${images[0]!.modality} ${images[0]!.gradability.status}` };
  const reason = refused[0]!.reasons?.[0];
  expect(reason, refused[0]!.message).toBeDefined();
  expect(reasonInWords(reason!), reason).not.toMatch(/failed a quality or format check/); // a known reason, in words
  return { outcome: 'rejected', reason: reason! };
}

describe('hostile-image corpus through every input path', () => {
  it('has at least 25 inputs', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(25);
  });

  for (const path of PATHS) {
    it(`${path}: each input accepted or refused with a reason in words, in bounded time, never an internal error`, async () => {
      const table: string[] = [];
      const counts = { accepted: 0, rejected: 0 };
      for (const [i, h] of corpus.entries()) {
        const t0 = performance.now();
        const g = await gatherImages([refFor(path, h, i)], { fetch, pacs: { baseUrl: pacs.url }, pixels, timeoutMs: 10_000 });
        const ms = performance.now() - t0;
        const o = outcomeOf(g);
        if (h.expect === 'rejected') expect(o, h.name).toMatchObject({ outcome: 'rejected' });
        expect(ms, h.name).toBeLessThan(PER_INPUT_MS);
        counts[o.outcome]++;
        table.push(`${h.name.padEnd(36)} ${o.outcome === 'accepted' ? `accepted (${o.detail})` : `rejected: ${o.reason}`}  ${ms.toFixed(0)} ms`);
      }
      console.log(`${path}: ${corpus.length} inputs, ${counts.accepted} accepted, ${counts.rejected} rejected\n${table.join('\n')}`);
    }, 300_000);
  }
});
