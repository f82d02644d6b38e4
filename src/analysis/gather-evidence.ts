/**
 * Hook context -> EvidenceBundle: clinical context (prefetch first, then FHIR), imaging resources
 * (ImagingStudy + Endpoint, Media), pixels over DICOMweb or FHIR attachments, image checks, assembly.
 * Never throws for missing data or failing upstreams: those become `problems`.
 */
import type { Resource } from 'fhir/r4.js';
import { EVIDENCE_PREFETCH } from '../../cds-hooks/prefetch.js';
import { assembleEvidenceBundle } from '../evidence/assemble.js';
import { gatherClinicalContext } from '../evidence/gather-context.js';
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

/** The bundle, and the references of the images the record points at (imaging/references.ts), fetched or not. */
export type GatheredEvidence = EvidenceBundle & { readonly imageReferences: readonly string[] };

export async function gatherEvidence(input: GatherEvidenceInput, deps: GatherEvidenceDeps): Promise<GatheredEvidence> {
  const t0 = performance.now();
  const [context, imaging] = await Promise.all([
    gatherClinicalContext(input.fhir, { patientId: input.patientId, encounterId: input.encounterId, prefetch: input.prefetch, signal: input.signal }),
    Promise.all(
      IMAGING_KEYS.map((key) =>
        resolveQuery({ key, query: fillTemplate(EVIDENCE_PREFETCH[key], { patientId: input.patientId, encounterId: input.encounterId }), patientId: input.patientId, prefetch: input.prefetch, fhir: input.fhir, signal: input.signal }),
      ),
    ),
  ]);
  const fhirMs = performance.now() - t0;
  const resources: Resource[] = [];
  const problems: Problem[] = [];
  for (const r of imaging) {
    resources.push(...r.resources);
    problems.push(...r.problems.filter((p) => p.kind !== 'missing_data'));
  }
  const refs = reachableRefs(selectImages(resources), deps.pacs !== undefined);
  const fhir = input.fhir;
  const gathered = await gatherImages(refs, {
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
  const bundle = assembleEvidenceBundle({
    context: { ...context, fhirMs },
    images: gathered.images,
    imageProblems: [...problems, ...gathered.problems],
    pacsMs: gathered.timings.pacsMs,
    imageMs: gathered.timings.imageMs,
  });
  return { ...bundle, imageReferences: imageReferences(refs) };
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
