/**
 * The images an analysis used, for the SMART app's review page: which ones (in a fixed order, so the page and
 * GET /app/image/<analysis>/<n> agree on `n`), what to say about each (eye, kind, date, why it was not
 * usable, in the same plain words the cards use: imaging/rejection.ts `reasonInWords`), and reading one
 * again to show it. An image is read again only from the reference the stored analysis keeps (never from a
 * URL a browser sends): a DICOM instance from the PACS the analysis read it from (the configured PACS's
 * credentials only for the configured PACS), a FHIR attachment or resource with the session's own FHIR
 * access, all through the guarded fetch (its allowlists). Nothing is kept: no cache, nothing on disk.
 */
import type { EvidenceBundle, EvidenceImage } from '../src/evidence/types.js';
import type { FhirClient } from '../src/fhir/client.js';
import { isAppError } from '../src/errors.js';
import { DicomWebClient } from '../src/imaging/dicomweb-client.js';
import type { PacsConfig } from '../src/imaging/gather.js';
import type { HttpFetch } from '../src/imaging/http.js';
import type { PixelWork } from '../src/imaging/pixel-workers.js';
import { isImageRejection, reasonInWords } from '../src/imaging/rejection.js';
import { selectImages } from '../src/imaging/select.js';
import { LIMITS } from '../src/imaging/thresholds.js';
import { ImageNotSame, renderForView, type ViewSize } from '../src/imaging/view-image.js';
import { RESOURCE_REF } from '../src/analysis/pipeline.js';

/** The images of an analysis in the order `n` counts them: right eye, left eye, then eye not recorded. */
export function analysisImages(evidence: EvidenceBundle | undefined): EvidenceImage[] {
  const i = evidence?.images;
  return i ? [...(i.right ?? []), ...(i.left ?? []), ...(i.unknown ?? [])] : [];
}

export interface ImageView {
  /** Its place in `analysisImages` (the route's `n`). */
  n: number;
  eye: 'Right eye' | 'Left eye' | 'Eye not recorded';
  kind: string;
  /** When it was taken, as the record gives it (study/series date, DICOM acquisition, Media.createdDateTime). */
  date?: string;
  /** Why the analysis could not use it, in plain words; absent when it was usable. */
  notUsable?: string;
}

const EYE_WORDS = { right: 'Right eye', left: 'Left eye', both: 'Eye not recorded', unknown: 'Eye not recorded' } as const;
const KIND = { OP: 'fundus photograph', OPT: 'OCT scan', other: 'image' } as const;

/** What the page says about each image (no identifiers, no file names, no codes). */
export function imageViews(evidence: EvidenceBundle | undefined): ImageView[] {
  return analysisImages(evidence).map((img, n) => ({
    n,
    eye: EYE_WORDS[img.eye] ?? 'Eye not recorded',
    kind: KIND[img.modality] ?? 'image',
    ...(img.acquired ? { date: img.acquired } : {}),
    ...(img.gradability.status === 'ungradable'
      ? { notUsable: [...new Set(img.gradability.reasons.map(reasonInWords))].join('; ') || 'it did not pass the quality check' }
      : {}),
  }));
}

/** A number of the route (`/app/image/<analysis>/<n>`): digits only, small. */
export function imageIndex(raw: string | undefined): number | undefined {
  return raw !== undefined && /^\d{1,4}$/.test(raw) ? Number(raw) : undefined;
}

export type ShownImage =
  | { kind: 'jpeg'; body: Buffer }
  /** `status`: 404 gone from the record, 409 changed since the analysis, 422 does not decode, 502 source unreachable or refused. */
  | { kind: 'unavailable'; status: 404 | 409 | 422 | 502; words: string };

export interface ImageReadDeps {
  fetch: HttpFetch;
  /** The configured PACS: its credentials go only to URLs under its base. */
  pacs?: PacsConfig;
  /** The session's FHIR access (attachments, Media/DocumentReference read again). */
  fhir?: FhirClient;
  pixels?: PixelWork;
  signal?: AbortSignal;
}


/** The source bytes of a stored image, from where the analysis read them (several candidates for a resource with several inline images). */
async function sourceBytes(img: EvidenceImage, deps: ImageReadDeps): Promise<Uint8Array[]> {
  const p = img.provenance;
  if (p.via === 'wado-native' || p.via === 'wado-rendered') {
    const base = (p.url ?? deps.pacs?.baseUrl)?.replace(/\/+$/, '');
    if (!base || !p.studyInstanceUid || !p.seriesInstanceUid || !p.sopInstanceUid) return [];
    const pacsBase = deps.pacs?.baseUrl.replace(/\/+$/, '');
    const trusted = pacsBase !== undefined && (base === pacsBase || base.startsWith(`${pacsBase}/`));
    const client = new DicomWebClient({ baseUrl: base, fetch: deps.fetch, auth: trusted ? deps.pacs?.auth : undefined, maxBytes: LIMITS.maxDicomBytes });
    const ids = { study: p.studyInstanceUid, series: p.seriesInstanceUid, instance: p.sopInstanceUid };
    return [p.via === 'wado-rendered' ? await client.retrieveRendered(ids, p.frame !== undefined ? { frame: p.frame } : {}) : await client.retrieveInstance(ids)];
  }
  if (!deps.fhir) return [];
  if (p.via === 'fhir-attachment' && p.url) {
    return [(await deps.fhir.readAttachment({ url: p.url }, { maxBytes: LIMITS.maxDicomBytes, ...(deps.signal ? { signal: deps.signal } : {}) })).data];
  }
  // Inline in a FHIR resource: that resource read again, its attachments tried (the content hash picks the one).
  const m = RESOURCE_REF.exec(p.fhirRef ?? '');
  if (!m) return [];
  const resource = await deps.fhir.read(m[1]!, m[2]!, deps.signal ? { signal: deps.signal } : {});
  return selectImages([resource])
    .flatMap((r) => (r.source.kind === 'attachment' && r.source.data !== undefined && (r.source.data.length * 3) / 4 <= LIMITS.maxDicomBytes ? [Buffer.from(r.source.data, 'base64')] : []))
    .slice(0, 8);
}

/**
 * One stored image, read again and shrunk to `size`; or why it cannot be shown, in plain words. Never
 * throws for an upstream or image problem.
 */
export async function showStoredImage(img: EvidenceImage, size: ViewSize, deps: ImageReadDeps): Promise<ShownImage> {
  let candidates: Uint8Array[];
  try {
    candidates = await sourceBytes(img, deps);
  } catch (err) {
    const status = isAppError(err) ? ((err as { upstreamStatus?: number }).upstreamStatus ?? 0) : 0;
    if (status === 404 || status === 410) return { kind: 'unavailable', status: 404, words: 'The image is no longer in the record.' };
    if (status === 401 || status === 403) return { kind: 'unavailable', status: 502, words: 'The EHR or image archive did not allow the app to read this image.' };
    const pacs = img.provenance.via === 'wado-native' || img.provenance.via === 'wado-rendered';
    return { kind: 'unavailable', status: 502, words: `The image could not be shown: ${reasonInWords(pacs ? 'pacs_unreachable' : 'fetch_failed')}.` };
  }
  if (candidates.length === 0) return { kind: 'unavailable', status: 404, words: 'The image is no longer in the record.' };
  let problem: unknown;
  for (const bytes of candidates) {
    try {
      return { kind: 'jpeg', body: await renderForView(bytes, { size, contentHash: img.contentHash, ...(img.provenance.frame !== undefined ? { frame: img.provenance.frame } : {}), ...(deps.pixels ? { pixels: deps.pixels } : {}) }) };
    } catch (err) {
      if (!(problem && !(problem instanceof ImageNotSame))) problem = err; // a decoding problem says more than a mismatch
    }
  }
  if (problem instanceof ImageNotSame) return { kind: 'unavailable', status: 409, words: 'The image in the record has changed since the analysis, so it is not shown here.' };
  return { kind: 'unavailable', status: 422, words: `The image could not be shown: ${reasonInWords(isImageRejection(problem) ? problem.reason : 'corrupt')}.` };
}

/** A placeholder picture saying why an image is not shown (an SVG: no script, text escaped). */
export function placeholderSvg(words: string, size: ViewSize): string {
  const w = size === 'thumb' ? 192 : 640;
  const h = size === 'thumb' ? 144 : 480;
  const esc = words.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const lines = wrap(esc, size === 'thumb' ? 26 : 60).slice(0, 5);
  const text = lines.map((l, i) => `<tspan x="50%" dy="${i === 0 ? 0 : 1.2}em">${l}</tspan>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img"><title>${esc}</title><rect width="100%" height="100%" fill="#eeeeee" stroke="#999999"/><text x="50%" y="${Math.round(h / 2 - lines.length * 8)}" text-anchor="middle" font-family="sans-serif" font-size="${size === 'thumb' ? 12 : 18}" fill="#333333">${text}</text></svg>`;
}

function wrap(s: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of s.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}
