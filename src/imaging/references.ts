/**
 * What identifies a patient's images without downloading them: one stable string per ImageRef, sorted
 * and de-duplicated. DICOM: Study/Series/SOP Instance UIDs (and the endpoint when the record names one);
 * attachments: the FHIR resource (Media/x, DocumentReference/x) with its version (meta.versionId, else
 * lastUpdated) and the URL without its query, or for inline data a hash of the data. Analyses are keyed by
 * these (analysis-cache.ts), so a hook for images already analysed is answered without a PACS request.
 * Pure; the strings hold identifiers (UIDs, resource ids): keep them in memory, never log them.
 */
import { createHash } from 'node:crypto';
import type { ImageRef } from './types.js';

function withoutQuery(url: string): string {
  return url.split(/[?#]/)[0] ?? url;
}

export function imageReference(ref: ImageRef): string {
  const s = ref.source;
  const mod = ref.modality ? `${ref.modality}:` : '';
  if (s.kind === 'dicomweb') return `dicom:${mod}${s.endpoint ? withoutQuery(s.endpoint) : ''}|${s.study}|${s.series ?? ''}|${s.instance ?? ''}`;
  const where = s.url ? withoutQuery(s.url) : s.data ? `sha256:${createHash('sha256').update(s.data).digest('hex')}` : '';
  return `attachment:${mod}${ref.fhirRef ?? ''}${ref.version ? `@${ref.version}` : ''}|${where}`;
}

export function imageReferences(refs: readonly ImageRef[]): string[] {
  return [...new Set(refs.map(imageReference))].sort();
}
