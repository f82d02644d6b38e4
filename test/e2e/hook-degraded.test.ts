/**
 * Issue 14 finding 6, through the real service (signed hook calls, the sandbox's EHR simulator, the tiny
 * random-weight model) with a loopback PACS that can go down: a hook whose images cannot be fetched is
 * answered with the finished analysis of the same image references (with a note), or with an info card
 * that says why; and the hostile-image corpus through the three image paths never gets a 5xx.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileCorpus, type HostileImage } from '../../scripts/hostile-images.js';
import type { CdsCard } from '../../src/cds/types.js';
import type { SandboxedService } from '../../src/sandbox/service.js';
import { startFakeDicomWeb, type FakeDicomWeb, type FakeInstance } from '../imaging/fake-dicomweb.js';
import { buildTiny } from '../model/model-harness.js';
import { startSandboxedService } from '../helpers/service.js';

const uid = (n: number) => `1.2.826.0.1.3680043.14.9.${n}`;
const PATIENT = { resourceType: 'Patient', id: 'degraded-1', birthDate: '1961-03-04', gender: 'female' };
let svc: SandboxedService;
let pacs: FakeDicomWeb;
let corpus: HostileImage[];
const instances: FakeInstance[] = [];

beforeAll(async () => {
  corpus = await hostileCorpus();
  const fundus = readFileSync('fixtures/dicom/amd-fundus-od.dcm');
  instances.push({ study: uid(1), series: `${uid(1)}.1`, sop: `${uid(1)}.1.1`, modality: 'OP', part10: fundus });
  instances.push({ study: uid(2), series: `${uid(2)}.1`, sop: `${uid(2)}.1.1`, modality: 'OP', part10: fundus });
  corpus.forEach((h, i) => instances.push({ study: uid(100 + i), series: `${uid(100 + i)}.1`, sop: `${uid(100 + i)}.1.1`, modality: 'OP', part10: h.bytes }));
  pacs = await startFakeDicomWeb(instances, { files: new Map(corpus.map((h) => [h.name, { body: h.bytes, contentType: h.contentType }])) });
  const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-degraded-model-')) })).outDir;
  // These cases want each call's outcome (findings, or why not) on that call: the hook waits for the background run.
  svc = await startSandboxedService({ VOLMO_MODEL_DIR: modelDir, VOLMO_SANDBOX_PACS: 'none', VOLMO_PACS_URL: pacs.url, VOLMO_PACS_ALLOWLIST: pacs.filesUrl, VOLMO_HOOK_WAIT_MS: '60000' });
}, 180_000);
afterAll(async () => {
  await svc?.close();
  await pacs?.close();
});

const study = (n: number) => ({
  resourceType: 'ImagingStudy',
  id: `study-${n}`,
  identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${uid(n)}` }],
  status: 'available',
  subject: { reference: `Patient/${PATIENT.id}` },
  series: [{ uid: `${uid(n)}.1`, modality: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: 'OP' }, laterality: { code: '24028007' }, instance: [{ uid: `${uid(n)}.1.1`, sopClass: { code: '1.2.840.10008.5.1.4.1.1.77.1.5.1' } }] }],
  started: '2026-01-05',
});
const media = (content: Record<string, unknown>) => ({ resourceType: 'Media', id: 'm1', status: 'completed', subject: { reference: `Patient/${PATIENT.id}` }, modality: { coding: [{ code: 'OP' }] }, content });
const searchset = (...resources: unknown[]) => ({ resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) });

async function hook(imaging: { imagingStudies?: unknown; media?: unknown }): Promise<{ status: number; cards: CdsCard[] }> {
  const sb = svc.sandbox!;
  const res = await sb.ehr.callHook({
    serviceUrl: `${svc.url}/cds-services/volmo-eye-summary-patient-view`,
    hook: 'patient-view',
    context: { userId: 'Practitioner/sandbox-practitioner', patientId: PATIENT.id },
    prefetch: { patient: PATIENT, imagingStudies: imaging.imagingStudies ?? searchset(), media: imaging.media ?? searchset() },
  });
  return { status: res.status, cards: (res.body as { cards?: CdsCard[] } | null)?.cards ?? [] };
}

describe('PACS down', () => {
  it('a hook for images already analysed is answered from the stored analysis: no PACS request, even with the PACS down (issue 9 item 1)', async () => {
    pacs.fail = undefined;
    let first = await hook({ imagingStudies: searchset(study(1)) });
    for (let i = 0; i < 150 && /in progress/.test(first.cards[0]?.summary ?? ''); i++) {
      await new Promise((r) => setTimeout(r, 400));
      first = await hook({ imagingStudies: searchset(study(1)) });
    }
    expect(first.status).toBe(200);
    expect(first.cards[0]!.detail).toMatch(/Right eye/);
    const before = pacs.requests.length;
    for (const fail of [undefined, 500, 'drop'] as const) {
      pacs.fail = fail;
      const again = await hook({ imagingStudies: searchset(study(1)) });
      expect(again.status).toBe(200);
      expect(again.cards).toHaveLength(1);
      expect(again.cards[0]!.extension?.['org.volmo-cds.analysis-id']).toBe(first.cards[0]!.extension?.['org.volmo-cds.analysis-id']);
      expect(again.cards[0]!.detail).toMatch(/Right eye/);
    }
    expect(pacs.requests.length).toBe(before); // listing needs no pixel: the PACS was not asked
    pacs.fail = undefined;
  }, 120_000);

  it('images never analysed and the PACS down: an info card says so, in words', async () => {
    pacs.fail = 500;
    const down = await hook({ imagingStudies: searchset(study(2)) });
    expect(down.status).toBe(200);
    expect(down.cards).toHaveLength(1);
    expect(down.cards[0]!.summary).toMatch(/1 eye image could not be assessed: the image archive \(PACS\) could not be reached$/);
    expect(down.cards[0]!.indicator).toBe('info');
    pacs.fail = undefined;
  });
});

describe('hostile-image corpus through the service', () => {
  it('every input on every path: HTTP 200, refused images never analysed, and reasons only in words', async () => {
    const counts: Record<string, number> = {};
    for (const [i, h] of corpus.entries()) {
      const calls: [string, { imagingStudies?: unknown; media?: unknown } | undefined][] = [
        // An empty inline attachment is no attachment at all (no card); the large DICOM does not fit a 5 MB hook body.
        ['attachment-data', h.bytes.length > 0 && h.bytes.length < 2_000_000 ? { media: searchset(media({ contentType: h.contentType, data: h.bytes.toString('base64') })) } : undefined],
        ['attachment-url', { media: searchset(media({ contentType: h.contentType, url: `${pacs.filesUrl}/${h.name}` })) }],
        ['dicomweb', { imagingStudies: searchset(study(100 + i)) }],
      ];
      for (const [path, imaging] of calls) {
        if (!imaging) continue;
        const { status, cards } = await hook(imaging);
        expect(status, `${h.name} via ${path}`).toBe(200);
        const text = cards.map((c) => `${c.summary}\n${c.detail ?? ''}`).join('\n');
        expect(text, `${h.name} via ${path}`).not.toMatch(/\b(too_many_pixels|unsupported_format|corrupt:|fetch_failed|pacs_unreachable|too_small)\b/);
        const kind = cards.length === 0 ? 'no card' : /eye images? could not be assessed: /.test(cards[0]!.summary) ? 'could-not-be-assessed card' : 'analysis card';
        // A refused image never reaches the model (no card when the record's content type already says it is no image).
        if (h.expect === 'rejected') expect(kind, `${h.name} via ${path}`).not.toBe('analysis card');
        counts[`${path}: ${kind}`] = (counts[`${path}: ${kind}`] ?? 0) + 1;
      }
    }
    console.log(`hostile corpus through the service: ${corpus.length} inputs, ${Object.values(counts).reduce((a, b) => a + b, 0)} hook calls, all HTTP 200: ${JSON.stringify(counts, null, 1)}`);
    expect(Object.keys(counts).some((k) => k.endsWith('could-not-be-assessed card'))).toBe(true);
  }, 600_000);
});
