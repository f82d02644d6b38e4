/**
 * Which images a patient's FHIR record points at: ImagingStudy series of modality OP (fundus) / OPT (OCT)
 * with their DICOMweb endpoint, and image attachments of Media, DocumentReference and Binary (by URL or
 * inline base64). Pure: no fetching. Laterality comes from series.laterality / bodySite codes or text.
 */
import type { Eye } from '../evidence/types.js';
import { normaliseUid } from './dicomweb-client.js';
import type { DicomModality, ImageRef, ImageSource } from './types.js';

type Json = Record<string, unknown>;
interface Coding { system?: string; code?: string; display?: string }
interface Concept { coding?: Coding[]; text?: string }

const RIGHT_CODES = new Set(['24028007', '18944008', '362502000', '419465000', '81745001']);
const LEFT_CODES = new Set(['7771000', '8966001', '362503005', '419161000', '1290041000']);
const BOTH_CODES = new Set(['51440002', '40638003', '244486005']);
const IMAGE_TYPES = /^(image\/(jpeg|png)|application\/dicom)\b/i;
const EXCLUDED_STATUS = new Set(['entered-in-error', 'cancelled', 'not-done', 'superseded']);

const arr = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

function eyeFromText(text: string | undefined): Eye {
  if (!text) return 'unknown';
  const t = text.toLowerCase();
  const right = /\bright\b|\bo\.?d\.?\b/.test(t);
  const left = /\bleft\b|\bo\.?s\.?\b/.test(t);
  if (/\bboth\b|\bbilateral\b|\bo\.?u\.?\b/.test(t) || (right && left)) return 'both';
  return right ? 'right' : left ? 'left' : 'unknown';
}

function eyeFromCodings(...items: (Coding | Concept | undefined)[]): Eye {
  for (const it of items) {
    if (!it) continue;
    const codings: Coding[] = 'coding' in it || 'text' in it ? arr<Coding>((it as Concept).coding) : [it as Coding];
    for (const c of codings) {
      const code = c.code?.trim();
      if (!code) continue;
      if (RIGHT_CODES.has(code) || code === 'R') return 'right';
      if (LEFT_CODES.has(code) || code === 'L') return 'left';
      if (BOTH_CODES.has(code) || code === 'B') return 'both';
    }
    const textEye = eyeFromText((it as Concept).text ?? (it as Coding).display ?? codings.map((c) => c.display ?? '').join(' '));
    if (textEye !== 'unknown') return textEye;
  }
  return 'unknown';
}

function modalityOf(...items: (Coding | Concept | undefined)[]): DicomModality | undefined {
  for (const it of items) {
    if (!it) continue;
    const codings: Coding[] = 'coding' in it || 'text' in it ? arr<Coding>((it as Concept).coding) : [it as Coding];
    for (const c of codings) {
      const code = c.code?.trim().toUpperCase();
      if (code === 'OP' || code === 'OPT') return code;
    }
    const text = [(it as Concept).text, (it as Coding).display, ...codings.map((c) => c.display)].join(' ').toLowerCase();
    if (/optical coherence|\boct\b|b-scan/.test(text)) return 'OPT';
    if (/fundus|retinal photo|disc photo/.test(text)) return 'OP';
  }
  return undefined;
}

/** Flattens Bundles and `contained`, and indexes resources by 'Type/id' and fullUrl for reference lookup. */
function index(resources: readonly unknown[]): { list: { r: Json; fullUrl?: string }[]; byRef: Map<string, Json> } {
  const list: { r: Json; fullUrl?: string }[] = [];
  const byRef = new Map<string, Json>();
  const add = (r: Json, fullUrl?: string): void => {
    if (r.resourceType === 'Bundle') {
      for (const e of arr<Json>(r.entry)) if (e.resource && typeof e.resource === 'object') add(e.resource as Json, str(e.fullUrl));
      return;
    }
    list.push({ r, fullUrl });
    if (str(r.id)) byRef.set(`${r.resourceType}/${r.id}`, r);
    if (fullUrl) byRef.set(fullUrl, r);
  };
  for (const r of resources) if (r && typeof r === 'object') add(r as Json);
  return { list, byRef };
}

function resolveEndpoint(ref: unknown, host: Json, byRef: Map<string, Json>): string | undefined {
  const reference = str((ref as Json | undefined)?.reference);
  if (!reference) return undefined;
  let ep: Json | undefined;
  if (reference.startsWith('#')) ep = arr<Json>(host.contained).find((c) => c.id === reference.slice(1));
  else ep = byRef.get(reference) ?? byRef.get(reference.split('/').slice(-2).join('/'));
  if (!ep || ep.resourceType !== 'Endpoint' || EXCLUDED_STATUS.has(String(ep.status))) return undefined;
  return str(ep.address);
}

function fhirRefOf(r: Json, fullUrl?: string): string | undefined {
  return str(r.id) ? `${r.resourceType}/${r.id}` : fullUrl;
}

function studyUidOf(study: Json): string | undefined {
  for (const id of arr<Json>(study.identifier)) {
    const v = str(id.value);
    if (v && (id.system === 'urn:dicom:uid' || v.startsWith('urn:oid:'))) {
      const uid = normaliseUid(v);
      if (uid) return uid;
    }
  }
  return undefined;
}

function attachmentSource(att: Json | undefined): ImageSource | undefined {
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
  const sorted = [...list].sort((a, b) => order.indexOf(String(a.r.resourceType)) - order.indexOf(String(b.r.resourceType)));
  for (const { r, fullUrl } of sorted) {
    if (EXCLUDED_STATUS.has(String(r.status))) continue;
    const fhirRef = fhirRefOf(r, fullUrl);
    if (r.resourceType === 'ImagingStudy') {
      const study = studyUidOf(r);
      if (!study) continue;
      for (const series of arr<Json>(r.series)) {
        const modality = modalityOf(series.modality as Coding | undefined);
        if (!modality) continue;
        const eye = eyeFromCodings(series.laterality as Coding, series.bodySite as Coding);
        const endpoint = resolveEndpoint(arr(series.endpoint)[0], r, byRef) ?? resolveEndpoint(arr(r.endpoint)[0], r, byRef);
        const seriesUid = normaliseUid(str(series.uid));
        const acquired = str(series.started) ?? str(r.started);
        const base = { kind: 'dicomweb' as const, ...(endpoint ? { endpoint } : {}), study, ...(seriesUid ? { series: seriesUid } : {}) };
        const instances = arr<Json>(series.instance);
        if (instances.length === 0 || !seriesUid) {
          push({ resourceType: 'ImagingStudy', eye, modality, source: base, fhirRef, acquired });
          continue;
        }
        for (const inst of instances) {
          const instance = normaliseUid(str(inst.uid));
          if (!instance) continue;
          const sopClass = normaliseUid(str((inst.sopClass as Coding | undefined)?.code));
          push({ resourceType: 'ImagingStudy', eye, modality, source: { ...base, instance, ...(sopClass ? { sopClass } : {}) }, fhirRef, acquired });
        }
      }
    } else if (r.resourceType === 'Media') {
      const source = attachmentSource(r.content as Json | undefined);
      if (!source) continue;
      const modality = modalityOf(r.modality as Concept, r.type as Concept, r.view as Concept);
      const eye = eyeFromCodings(r.bodySite as Concept);
      push({ resourceType: 'Media', eye, modality, source, fhirRef, acquired: str(r.createdDateTime) ?? str(r.issued) });
    } else if (r.resourceType === 'DocumentReference') {
      const modality = modalityOf(r.type as Concept, ...arr<Concept>(r.category), { text: str(r.description) });
      const eye = eyeFromText(str(r.description));
      for (const c of arr<Json>(r.content)) {
        const source = attachmentSource(c.attachment as Json | undefined);
        if (source) push({ resourceType: 'DocumentReference', eye, modality, source, fhirRef, acquired: str(r.date) });
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
