/**
 * ImageRef[] → EvidenceImages + problems: fetch (DICOMweb native Part 10, falling back to server-rendered
 * JPEG when we cannot decode the stored syntax; FHIR attachments by URL or inline), check, grade, dedupe.
 * Never throws for one bad image or an unreachable PACS: each becomes a typed Problem.
 */
import type { EvidenceImage, EvidenceImages, ImageProvenance, Problem } from '../evidence/types.js';
import { isAppError } from '../errors.js';
import { DicomWebClient, jsonString, parseWadoAddress, type InstanceIds, type PacsAuth } from './dicomweb-client.js';
import type { HttpFetch } from './http.js';
import { PixelBudget } from './pixel-budget.js';
import type { PixelWork } from './pixel-workers.js';
import { prepareImage, type PreparedImage } from './prepare.js';
import { ImageRejection, isImageRejection } from './rejection.js';
import { LIMITS } from './thresholds.js';
import type { ImageRef } from './types.js';

export interface PacsConfig {
  /** WADO-RS root. Its credentials are sent only to URLs under this base. */
  readonly baseUrl: string;
  readonly auth?: PacsAuth;
}

export type AttachmentFetcher = (url: string, maxBytes: number) => Promise<{ bytes: Uint8Array; contentType?: string }>;

export interface GatherImagesOptions {
  /** The guarded fetch (allowlist, address checks, timeouts). */
  readonly fetch: HttpFetch;
  /** Default PACS: used when a study has no http(s) endpoint, and for credentials. */
  readonly pacs?: PacsConfig;
  /** Fetches FHIR attachment URLs ('Binary/x' or absolute) with the EHR's token; required for url attachments. */
  readonly fetchAttachment?: AttachmentFetcher;
  readonly maxImages?: number;
  readonly concurrency?: number;
  readonly timeoutMs?: number;
  /** Total pixels decoded for this call (default LIMITS.maxStudyPixels); images past it are refused with a reason. */
  readonly maxStudyPixels?: number;
  /** Where the image checks' pixel loops run (default: the process-wide pixel worker pool). */
  readonly pixels?: PixelWork;
}

export interface GatheredImages {
  readonly images: EvidenceImages;
  readonly problems: Problem[];
  readonly timings: { pacsMs: number; imageMs: number };
}

const FALLBACK_TO_RENDERED = new Set(['unsupported_transfer_syntax', 'unsupported_pixel_format', 'too_large_bytes']);

function stripQuery(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.split('?')[0];
  }
}

export async function gatherImages(refs: readonly ImageRef[], opts: GatherImagesOptions): Promise<GatheredImages> {
  const problems: Problem[] = [];
  const timings = { pacsMs: 0, imageMs: 0 };
  const max = opts.maxImages ?? 24;
  const clients = new Map<string, DicomWebClient>();
  const sourceOf = (ref: ImageRef): string => `image:${ref.resourceType}`;
  // The bytes are fetched or decoded here and used once: large native frames move to a pixel worker uncopied.
  const prepareOpts = { budget: new PixelBudget(opts.maxStudyPixels ?? LIMITS.maxStudyPixels), pixels: opts.pixels, transferBytes: true };
  const problem = (p: Problem): void => void problems.push(p);

  const timed = async <T>(key: 'pacsMs' | 'imageMs', fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings[key] += performance.now() - t0;
    }
  };

  function clientFor(endpoint: string | undefined): { client: DicomWebClient; study?: string; series?: string } | undefined {
    let base = opts.pacs?.baseUrl;
    let study: string | undefined;
    let series: string | undefined;
    if (endpoint && /^https?:\/\//i.test(endpoint)) ({ baseUrl: base, study, series } = parseWadoAddress(endpoint));
    if (!base) return undefined;
    base = base.replace(/\/+$/, '');
    const pacsBase = opts.pacs?.baseUrl.replace(/\/+$/, '');
    const trusted = pacsBase !== undefined && (base === pacsBase || base.startsWith(`${pacsBase}/`));
    let client = clients.get(base);
    if (!client) {
      client = new DicomWebClient({ baseUrl: base, fetch: opts.fetch, auth: trusted ? opts.pacs?.auth : undefined, timeoutMs: opts.timeoutMs, maxBytes: LIMITS.maxDicomBytes });
      clients.set(base, client);
    }
    return { client, study, series };
  }

  /** Expands a study/series without listed instances by QIDO-RS. */
  async function expand(ref: ImageRef): Promise<ImageRef[]> {
    const s = ref.source;
    if (s.kind !== 'dicomweb' || s.instance) return [ref];
    const c = clientFor(s.endpoint);
    if (!c) return [ref];
    const rows = await timed('pacsMs', () => c.client.searchInstances(s.study, s.series, s.series ? {} : { Modality: ref.modality ?? 'OP' }));
    return rows.flatMap((row) => {
      const series = jsonString(row, '0020000E') ?? s.series;
      const instance = jsonString(row, '00080018');
      return series && instance ? [{ ...ref, source: { ...s, series, instance } }] : [];
    });
  }

  async function one(ref: ImageRef): Promise<PreparedImage> {
    const s = ref.source;
    const hints = { modality: ref.modality, eye: ref.eye, acquired: ref.acquired };
    if (s.kind === 'attachment') {
      let bytes: Uint8Array;
      let provenance: ImageProvenance;
      if (s.data !== undefined) {
        if ((s.data.length * 3) / 4 > LIMITS.maxDicomBytes) throw new ImageRejection('too_large_bytes', 'inline attachment over the byte limit');
        bytes = Buffer.from(s.data, 'base64');
        provenance = { fhirRef: ref.fhirRef, via: 'inline' };
      } else {
        if (s.size !== undefined && s.size > LIMITS.maxDicomBytes) throw new ImageRejection('too_large_bytes', `attachment declares ${s.size} bytes`);
        const url = s.url!;
        const fetcher: AttachmentFetcher | undefined =
          opts.fetchAttachment ??
          (/^https?:\/\//i.test(url)
            ? async (u, maxBytes) => {
                const res = await opts.fetch(u, { headers: { accept: 'image/jpeg, image/png, application/dicom' }, maxBytes, timeoutMs: opts.timeoutMs });
                if (!res.ok) throw new ImageRejection('fetch_failed', `attachment answered HTTP ${res.status}`);
                return { bytes: res.body, contentType: res.header('content-type') };
              }
            : undefined);
        if (!fetcher) throw new ImageRejection('fetch_failed', 'relative attachment URL and no FHIR attachment fetcher configured');
        bytes = (await timed('pacsMs', () => fetcher(url, LIMITS.maxDicomBytes))).bytes;
        provenance = { fhirRef: ref.fhirRef, url: stripQuery(url), via: 'fhir-attachment' };
      }
      return timed('imageMs', () => prepareImage(bytes, { ...hints, provenance }, prepareOpts));
    }
    const c = clientFor(s.endpoint);
    if (!c) throw new ImageRejection('fetch_failed', 'no DICOMweb endpoint for this study and no PACS configured');
    const ids: InstanceIds = { study: s.study, series: s.series!, instance: s.instance! };
    const provenance: ImageProvenance = { fhirRef: ref.fhirRef, studyInstanceUid: ids.study, seriesInstanceUid: ids.series, sopInstanceUid: ids.instance, url: c.client.baseUrl, via: 'wado-native' };
    try {
      const bytes = await timed('pacsMs', () => c.client.retrieveInstance(ids));
      return await timed('imageMs', () => prepareImage(bytes, { ...hints, provenance }, prepareOpts));
    } catch (err) {
      const tooBig = isAppError(err) && !isImageRejection(err) && err.code === 'payload_too_large';
      if (!tooBig && !(isImageRejection(err) && FALLBACK_TO_RENDERED.has(err.reason))) throw err;
      // No rendered copy either: the reason stays why the stored object was refused.
      const jpeg = await timed('pacsMs', () => c.client.retrieveRendered(ids)).catch(() => {
        throw err;
      });
      return timed('imageMs', () => prepareImage(jpeg, { ...hints, provenance: { ...provenance, via: 'wado-rendered' } }, prepareOpts));
    }
  }

  // expand studies/series, cap the count
  const expanded: ImageRef[] = [];
  for (const ref of refs) {
    try {
      expanded.push(...(await expand(ref)));
    } catch (err) {
      problem({ kind: 'pacs_unreachable', severity: 'warning', code: isAppError(err) ? err.code : 'upstream_error', source: 'pacs', message: `instance search failed: ${isAppError(err) ? err.message : 'error'}`, reasons: ['pacs_unreachable'] });
    }
  }
  if (expanded.length > max) {
    problem({ kind: 'truncated', severity: 'info', source: 'images', message: `${expanded.length} images found, only the first ${max} used` });
    expanded.length = max;
  }

  const results: (PreparedImage | undefined)[] = new Array(expanded.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < expanded.length) {
      const i = next++;
      const ref = expanded[i];
      try {
        results[i] = await one(ref);
      } catch (err) {
        if (isImageRejection(err) && err.reason !== 'fetch_failed') {
          problem({ kind: 'image_rejected', severity: 'warning', code: err.code, source: sourceOf(ref), message: `${err.reason}: ${err.message}`, reasons: [err.reason] });
        } else {
          const code = isAppError(err) ? err.code : 'internal';
          const pacs = ref.source.kind === 'dicomweb';
          const reason = code === 'payload_too_large' ? 'too_large_bytes' : pacs ? 'pacs_unreachable' : 'fetch_failed';
          problem({ kind: pacs ? 'pacs_unreachable' : 'image_rejected', severity: 'warning', code, source: pacs ? 'pacs' : sourceOf(ref), message: `image could not be fetched: ${isAppError(err) ? err.message : 'unexpected error'}`, reasons: [reason] });
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 2) }, worker));

  const byHash = new Set<string>();
  const right: EvidenceImage[] = [];
  const left: EvidenceImage[] = [];
  const unknown: EvidenceImage[] = [];
  results.forEach((img, i) => {
    if (!img) return;
    const source = sourceOf(expanded[i]);
    if (byHash.has(img.contentHash)) {
      problem({ kind: 'image_duplicate', severity: 'info', source, message: 'identical image already included' });
      return;
    }
    byHash.add(img.contentHash);
    if (img.lateralityConflict) problem({ kind: 'missing_data', severity: 'warning', source, message: 'laterality in the record and in the DICOM header disagree; eye set to unknown' });
    if (img.gradability.status === 'ungradable') {
      problem({ kind: 'image_ungradable', severity: 'warning', source, message: `${img.modality} image ungradable: ${img.gradability.reasons.join(', ')}`, reasons: img.gradability.reasons });
    }
    (img.eye === 'right' ? right : img.eye === 'left' ? left : unknown).push(img);
  });
  return { images: { right, left, unknown }, problems, timings };
}
