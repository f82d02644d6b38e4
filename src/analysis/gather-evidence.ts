/**
 * Hook context -> EvidenceBundle in two steps: `listEvidence` reads the clinical context and the image
 * references (prefetch first, then FHIR; no pixel is downloaded), which is all a hook needs to find an
 * analysis already made; `fetchEvidence` then fetches the pixels over DICOMweb or FHIR attachments, checks
 * and grades them, and assembles the bundle. Never throws for missing data or failing upstreams: those
 * become `problems`.
 */
import type { Resource } from 'fhir/r4.js';
import { EVIDENCE_PREFETCH } from '../../cds-hooks/prefetch.js';
import { assembleEvidenceBundle } from '../evidence/assemble.js';
import { gatherClinicalContext, type ClinicalContextResult } from '../evidence/gather-context.js';
import { fillTemplate, resolveQuery } from '../evidence/prefetch.js';
import type { EvidenceBundle, Problem } from '../evidence/types.js';
import type { FhirClient } from '../fhir/client.js';
import { gatherImages, type PacsConfig } from '../imaging/gather.js';
import type { HttpFetch } from '../imaging/http.js';
import type { PixelWork } from '../imaging/pixel-workers.js';
import type { ImageRef } from '../imaging/types.js';
import { imageReferences } from '../imaging/references.js';
import { selectImages } from '../imaging/select.js';

export interface GatherEvidenceInput {
  patientId: string;
  encounterId?: string;
  prefetch?: Readonly<Record<string, unknown>> | null;
  /** undefined when the call carries no usable FHIR access: prefetch alone is used. */
  fhir?: FhirClient;
  signal?: AbortSignal;
}

export interface GatherEvidenceDeps {
  fetch: HttpFetch;
  pacs?: PacsConfig;
  maxImages?: number;
  /** Total pixels one call may decode (default LIMITS.maxStudyPixels). */
  maxStudyPixels?: number;
  /** Where the image checks' pixel loops run (default: the process-wide pixel worker pool). */
  pixels?: PixelWork;
}

const IMAGING_KEYS = ['imagingStudies', 'media'] as const;

/**
 * What a hook can know without downloading a pixel: the clinical context and the references of the images
 * (DICOM UIDs, Media/DocumentReference ids and versions, attachment URLs or hashes).
 */
export interface ListedEvidence {
  readonly context: ClinicalContextResult;
  readonly refs: readonly ImageRef[];
  /** One stable string per image (imaging/references.ts): with the context, what identifies an analysis. */
  readonly references: readonly string[];
  readonly problems: readonly Problem[];
}

/** Step 1: the clinical context and the image references, from prefetch first, then the FHIR server. */
export async function listEvidence(input: GatherEvidenceInput, deps: { pacsConfigured: boolean }): Promise<ListedEvidence> {
  const t0 = performance.now();
  const [context, imaging] = await Promise.all([
    gatherClinicalContext(input.fhir, { patientId: input.patientId, encounterId: input.encounterId, prefetch: input.prefetch, signal: input.signal }),
    Promise.all(
      IMAGING_KEYS.map((key) =>
        resolveQuery({ key, query: fillTemplate(EVIDENCE_PREFETCH[key], { patientId: input.patientId, encounterId: input.encounterId }), patientId: input.patientId, prefetch: input.prefetch, fhir: input.fhir, signal: input.signal }),
      ),
    ),
  ]);
  const resources: Resource[] = [];
  const problems: Problem[] = [];
  for (const r of imaging) {
    resources.push(...r.resources);
    problems.push(...r.problems.filter((p) => p.kind !== 'missing_data'));
  }
  const refs = reachableRefs(selectImages(resources), deps.pacsConfigured);
  return { context: { ...context, fhirMs: performance.now() - t0 }, refs, references: imageReferences(refs), problems };
}

/** Step 2: the pixels of the listed images (DICOMweb or attachments), checked and graded, joined with the context. */
export async function fetchEvidence(listed: ListedEvidence, input: Pick<GatherEvidenceInput, 'fhir' | 'signal'>, deps: GatherEvidenceDeps): Promise<EvidenceBundle> {
  const fhir = input.fhir;
  const gathered = await gatherImages(listed.refs, {
    fetch: deps.fetch,
    pacs: deps.pacs,
    maxImages: deps.maxImages,
    maxStudyPixels: deps.maxStudyPixels,
    pixels: deps.pixels,
    fetchAttachment: fhir
      ? async (url, maxBytes) => {
          const b = await fhir.readAttachment({ url }, { maxBytes, signal: input.signal });
          return { bytes: b.data, contentType: b.contentType };
        }
      : undefined,
  });
  return assembleEvidenceBundle({
    context: listed.context,
    images: gathered.images,
    imageProblems: [...listed.problems, ...gathered.problems],
    pacsMs: gathered.timings.pacsMs,
    imageMs: gathered.timings.imageMs,
  });
}

/** Both steps at once (site validation, benchmarks, tests). */
export async function gatherEvidence(input: GatherEvidenceInput, deps: GatherEvidenceDeps): Promise<EvidenceBundle> {
  return fetchEvidence(await listEvidence(input, { pacsConfigured: deps.pacs !== undefined }), input, deps);
}

/**
 * A study with no DICOMweb endpoint cannot be fetched without a configured PACS. When the record also
 * carries images as FHIR attachments (Media — Epic's "Media (Study)", or the sandbox without a PACS), those
 * are the pixels to use and the unreachable DICOM references are dropped; otherwise they are kept so the
 * gap is reported as a problem.
 */
export function reachableRefs(refs: readonly ImageRef[], pacsConfigured: boolean): ImageRef[] {
  const unreachable = (r: ImageRef) => r.source.kind === 'dicomweb' && !r.source.endpoint && !pacsConfigured;
  const hasAttachments = refs.some((r) => r.source.kind === 'attachment');
  return hasAttachments ? refs.filter((r) => !unreachable(r)) : [...refs];
}
