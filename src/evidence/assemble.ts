/** Joins the clinical context (this folder) and the images (imaging) into one EvidenceBundle. */
import { renderCaseText } from './case-text.js';
import type { ClinicalContextResult } from './gather-context.js';
import { EMPTY_IMAGES, type EvidenceBundle, type EvidenceImages, type Problem } from './types.js';

export interface AssembleInput {
  readonly context: ClinicalContextResult;
  readonly images?: EvidenceImages;
  readonly imageProblems?: readonly Problem[];
  readonly pacsMs?: number;
  readonly imageMs?: number;
}

export function assembleEvidenceBundle(input: AssembleInput): EvidenceBundle {
  const images = input.images ?? EMPTY_IMAGES;
  return {
    version: 1,
    patient: input.context.patient,
    caseText: renderCaseText(input.context.patient, images),
    images,
    problems: [...input.context.problems, ...(input.imageProblems ?? [])],
    sources: input.context.sources,
    timings: { fhirMs: input.context.fhirMs, pacsMs: input.pacsMs, imageMs: input.imageMs },
  };
}
