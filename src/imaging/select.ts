/**
 * Which images a patient's FHIR record points at: ImagingStudy series of modality OP (fundus) / OPT (OCT)
 * with their DICOMweb endpoint, and image attachments of Media, DocumentReference and Binary (by URL or
 * inline base64). Pure: no fetching. Laterality comes from series.laterality / bodySite codes or text.
 */
import type { Eye } from '../evidence/types.js';
import { arr, codingsIn, flattenResources, obj, objects, str, textIn, type FlatResource, type Json } from '../evidence/resource-shape.js';
import { normaliseUid } from './dicomweb-client.js';
import type { DicomModality, ImageRef, ImageSource } from './types.js';

const RIGHT_CODES = new Set(['24028007', '18944008', '362502000', '419465000', '81745001']);
const LEFT_CODES = new Set(['7771000', '8966001', '362503005', '419161000', '1290041000']);
const BOTH_CODES = new Set(['51440002', '40638003', '244486005']);
const IMAGE_TYPES = /^(image\/(jpeg|png)|application\/dicom)\b/i;
const EXCLUDED_STATUS = new Set(['entered-in-error', 'cancelled', 'not-done', 'superseded']);


function eyeFromText(text: string | undefined): Eye {
  if (!text) return 'unknown';
  const t = text.toLowerCase();
  const right = /\bright\b|\bo\.?d\.?\b/.test(t);
  const left = /\bleft\b|\bo\.?s\.?\b/.test(t);
  if (/\bboth\b|\bbilateral\b|\bo\.?u\.?\b/.test(t) || (right && left)) return 'both';
  return right ? 'right' : left ? 'left' : 'unknown';
}

function eyeFromCodings(...items: unknown[]): Eye {
  for (const it of items) {
    const codings = codingsIn(it);
    for (const c of codings) {
      const code = c.code?.trim();
      if (!code) continue;
      if (RIGHT_CODES.has(code) || code === 'R') return 'right';
      if (LEFT_CODES.has(code) || code === 'L') return 'left';
      if (BOTH_CODES.has(code) || code === 'B') return 'both';
    }
    const textEye = eyeFromText(textIn(it) ?? codings.map((c) => c.display ?? '').join(' '));
    if (textEye !== 'unknown') return textEye;
  }
  return 'unknown';
}

function modalityOf(...items: unknown[]): DicomModality | undefined {
  for (const it of items) {
    const codings = codingsIn(it);
    for (const c of codings) {
      const code = c.code?.trim().toUpperCase();
      if (code === 'OP' || code === 'OPT') return code;
    }
    const text = [textIn(it), ...codings.map((c) => c.display)].join(' ').toLowerCase();
    if (/optical coherence|\boct\b|b-scan/.test(text)) return 'OPT';
    if (/fundus|retinal photo|disc photo/.test(text)) return 'OP';
  }
  return undefined;
}

/** Flattens Bundles (iteratively, bounded: resource-shape.ts) and indexes resources by 'Type/id' and fullUrl for reference lookup. */
function index(resources: readonly unknown[]): { list: FlatResource[]; byRef: Map<string, Json> } {
  const { list } = flattenResources(resources);
  const byRef = new Map<string, Json>();
  for (const { r, fullUrl } of list) {
    const ref = fhirRefOf(r);
    if (ref) byRef.set(ref, r);
    if (fullUrl) byRef.set(fullUrl, r);
  }
  return { list, byRef };
}

function resolveEndpoint(ref: unknown, host: Json, byRef: Map<string, Json>): string | undefined {
  const reference = str(obj(ref)?.reference);
  if (!reference) return undefined;
  let ep: Json | undefined;
  if (reference.startsWith('#')) ep = objects(host.contained).find((c) => c.id === reference.slice(1));
  else ep = byRef.get(reference) ?? byRef.get(reference.split('/').slice(-2).join('/'));
  if (!ep || ep.resourceType !== 'Endpoint' || EXCLUDED_STATUS.has(str(ep.status) ?? '')) return undefined;
  return str(ep.address);
}

function fhirRefOf(r: Json, fullUrl?: string): string | undefined {
  const type = str(r.resourceType);
  const id = str(r.id);
  return type && id ? `${type}/${id}` : fullUrl;
}

function studyUidOf(study: Json): string | undefined {
  for (const id of objects(study.identifier)) {
    const v = str(id.value);
    if (v && (id.system === 'urn:dicom:uid' || v.startsWith('urn:oid:'))) {
      const uid = normaliseUid(v);
      if (uid) return uid;
    }
  }
  return undefined;
}

function attachmentSource(value: unknown): ImageSource | undefined {
  const att = obj(value);
  if (!att) return undefined;
  const contentType = str(att.contentType);
  if (contentType && !IMAGE_TYPES.test(contentType)) return undefined;
  const data = str(att.data);
  const url = str(att.url);
  if (!data && !url) return undefined;
  if (!contentType && !data && !/\/Binary\//.test(`/${url}`)) return undefined; // an untyped link is not assumed to be an image
  return { kind: 'attachment', ...(url && !data ? { url } : {}), ...(data ? { data } : {}), ...(contentType ? { contentType } : {}), ...(typeof att.size === 'number' ? { size: att.size } : {}) };
}

export function selectImages(resources: readonly unknown[]): ImageRef[] {
  const { list, byRef } = index(resources);
  const out: ImageRef[] = [];
  const seen = new Set<string>();
  const push = (ref: ImageRef): void => {
    const s = ref.source;
    const key = s.kind === 'dicomweb' ? `d|${s.study}|${s.series ?? ''}|${s.instance ?? ''}` : `a|${s.url ?? ''}|${s.data?.length ?? 0}|${s.data?.slice(0, 64) ?? ''}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push(ref);
  };
  const order = ['ImagingStudy', 'Media', 'DocumentReference', 'Binary'];
  const sorted = [...list].sort((a, b) => order.indexOf(str(a.r.resourceType) ?? '') - order.indexOf(str(b.r.resourceType) ?? ''));
  for (const { r, fullUrl } of sorted) {
    if (EXCLUDED_STATUS.has(str(r.status) ?? '')) continue;
    const fhirRef = fhirRefOf(r, fullUrl);
    const meta = obj(r.meta);
    const v = str(meta?.versionId) ?? str(meta?.lastUpdated);
    const version = v ? { version: v } : {};
    if (r.resourceType === 'ImagingStudy') {
      const study = studyUidOf(r);
      if (!study) continue;
      for (const series of objects(r.series)) {
        const modality = modalityOf(series.modality);
        if (!modality) continue;
        const eye = eyeFromCodings(series.laterality, series.bodySite);
        const endpoint = resolveEndpoint(arr(series.endpoint)[0], r, byRef) ?? resolveEndpoint(arr(r.endpoint)[0], r, byRef);
        const seriesUid = normaliseUid(str(series.uid));
        const acquired = str(series.started) ?? str(r.started);
        const base = { kind: 'dicomweb' as const, ...(endpoint ? { endpoint } : {}), study, ...(seriesUid ? { series: seriesUid } : {}) };
        const instances = objects(series.instance);
        if (instances.length === 0 || !seriesUid) {
          push({ resourceType: 'ImagingStudy', eye, modality, source: base, fhirRef, ...version, acquired });
          continue;
        }
        for (const inst of instances) {
          const instance = normaliseUid(str(inst.uid));
          if (!instance) continue;
          const sopClass = normaliseUid(str(obj(inst.sopClass)?.code));
          push({ resourceType: 'ImagingStudy', eye, modality, source: { ...base, instance, ...(sopClass ? { sopClass } : {}) }, fhirRef, ...version, acquired });
        }
      }
    } else if (r.resourceType === 'Media') {
      const source = attachmentSource(r.content);
      if (!source) continue;
      const modality = modalityOf(r.modality, r.type, r.view);
      const eye = eyeFromCodings(r.bodySite);
      push({ resourceType: 'Media', eye, modality, source, fhirRef, ...version, acquired: str(r.createdDateTime) ?? str(r.issued) });
    } else if (r.resourceType === 'DocumentReference') {
      const modality = modalityOf(r.type, ...arr(r.category), { text: str(r.description) });
      const eye = eyeFromText(str(r.description));
      for (const c of objects(r.content)) {
        const source = attachmentSource(c.attachment);
        if (source) push({ resourceType: 'DocumentReference', eye, modality, source, fhirRef, ...version, acquired: str(r.date) });
      }
    } else if (r.resourceType === 'Binary') {
      const contentType = str(r.contentType);
      const data = str(r.data);
      if (!contentType || !IMAGE_TYPES.test(contentType) || !data) continue;
      push({ resourceType: 'Binary', eye: 'unknown', source: { kind: 'attachment', data, contentType }, fhirRef });
    }
  }
  return out;
}
