/**
 * Every FHIR resource from an EHR — prefetch or a FHIR server's answer — is untrusted input. This module is
 * the one place its shape is checked:
 * - safe accessors for code that reads `unknown` (select.ts): wrong types read as absent, never throw;
 * - `flattenResources`: Bundles nested in Bundles unpacked without recursion, to a bounded depth;
 * - `screenResources`: the boundary check that prefetch resolution applies to every resource it hands on.
 *   Each element the evidence code reads must have its FHIR type. A malformed element is left out — the
 *   smallest repeated element holding it (one coding, one instance, one component) or else the top-level
 *   element — and a malformed status, subject or patient skips the whole resource. Each repair or skip is a
 *   `malformed_resource` problem naming element paths only (never values: they may hold PHI).
 * Checks never walk what the evidence code does not read, so deep nesting elsewhere costs nothing.
 */
import type { Resource } from 'fhir/r4.js';
import { z } from 'zod';
import type { Problem } from './types.js';

export type Json = Record<string, unknown>;

export const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
export const arr = (v: unknown): readonly unknown[] => (Array.isArray(v) ? v : []);
export const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
/** The object items of an array; anything else in it (null, numbers, strings) is passed over. */
export const objects = (v: unknown): Json[] => arr(v).filter((x): x is Json => obj(x) !== undefined);

/** A table lookup that does not reach Object.prototype ('constructor', '__proto__', 'toString' are not keys). */
export function own<V>(table: Readonly<Record<string, V>>, key: unknown): V | undefined {
  return typeof key === 'string' && Object.hasOwn(table, key) ? table[key] : undefined;
}

export interface SafeCoding {
  readonly system?: string;
  readonly code?: string;
  readonly display?: string;
}

const safeCoding = (c: Json): SafeCoding => ({ system: str(c.system), code: str(c.code), display: str(c.display) });

/** The codings of a CodeableConcept, or of a bare Coding (ImagingStudy.series.modality is one), with string fields only. */
export function codingsIn(v: unknown): SafeCoding[] {
  const o = obj(v);
  if (!o) return [];
  return 'coding' in o || 'text' in o ? objects(o.coding).map(safeCoding) : [safeCoding(o)];
}

/** The free text of a CodeableConcept (`text`) or a Coding (`display`). */
export function textIn(v: unknown): string | undefined {
  const o = obj(v);
  return o ? (str(o.text) ?? str(o.display)) : undefined;
}

/** How deep Bundles may nest inside a Bundle (a searchset of batch responses is 2); deeper content is left out. */
export const MAX_BUNDLE_NESTING = 4;

export interface FlatResource {
  readonly r: Json;
  readonly fullUrl?: string;
}

/** Unpacks Bundles (entry[].resource) in document order, iteratively; counts resources left out below MAX_BUNDLE_NESTING. */
export function flattenResources(resources: readonly unknown[]): { list: FlatResource[]; tooDeep: number } {
  const list: FlatResource[] = [];
  let tooDeep = 0;
  const stack: { r: Json; fullUrl?: string; depth: number }[] = [];
  const pushAll = (items: readonly { r: Json; fullUrl?: string }[], depth: number) => {
    for (let i = items.length - 1; i >= 0; i--) stack.push({ ...items[i], depth });
  };
  pushAll(resources.flatMap((x) => (obj(x) ? [{ r: x as Json }] : [])), 0);
  while (stack.length > 0) {
    const { r, fullUrl, depth } = stack.pop()!;
    if (r.resourceType !== 'Bundle') {
      list.push(fullUrl === undefined ? { r } : { r, fullUrl });
      continue;
    }
    if (depth >= MAX_BUNDLE_NESTING) {
      tooDeep++;
      continue;
    }
    pushAll(objects(r.entry).flatMap((e) => (obj(e.resource) ? [{ r: e.resource as Json, fullUrl: str(e.fullUrl) }] : [])), depth + 1);
  }
  return { list, tooDeep };
}

// ---------- the shapes the evidence code reads (R4 datatypes, only the elements used) ----------

const s = z.string().optional();
const coding = z.looseObject({ system: s, code: s, display: s });
const concept = z.looseObject({ coding: z.array(coding).optional(), text: s });
const concepts = z.array(concept).optional();
const reference = z.looseObject({ reference: s, display: s });
const period = z.looseObject({ start: s, end: s });
const quantity = z.looseObject({ value: z.number().optional(), unit: s, code: s, system: s });
const ratio = z.looseObject({ numerator: quantity.optional(), denominator: quantity.optional() });
const attachment = z.looseObject({ contentType: s, data: s, url: s, size: z.number().optional() });
const dosage = z.looseObject({ text: s, route: concept.optional(), site: concept.optional() });
const value = { valueQuantity: quantity.optional(), valueString: s, valueCodeableConcept: concept.optional(), valueRatio: ratio.optional() };
/** Contained resources are read for Medication.code and Endpoint.address/status only. */
const containedResource = z.looseObject({ resourceType: z.string(), id: s, status: s, code: concept.optional(), address: s });

const common = {
  resourceType: z.string(),
  id: s,
  status: s,
  subject: reference.optional(),
  patient: reference.optional(),
  contained: z.array(containedResource).optional(),
};
const medication = { medicationCodeableConcept: concept.optional(), medicationReference: reference.optional() };

const SHAPES: Readonly<Record<string, z.ZodType>> = {
  Patient: z.looseObject({ ...common, gender: s, birthDate: s }),
  Condition: z.looseObject({
    ...common,
    clinicalStatus: concept.optional(),
    verificationStatus: concept.optional(),
    code: concept.optional(),
    bodySite: concepts,
    onsetDateTime: s,
    onsetPeriod: period.optional(),
    recordedDate: s,
  }),
  Observation: z.looseObject({
    ...common,
    code: concept.optional(),
    bodySite: concept.optional(),
    effectiveDateTime: s,
    effectiveInstant: s,
    effectivePeriod: period.optional(),
    issued: s,
    ...value,
    component: z.array(z.looseObject({ code: concept.optional(), ...value })).optional(),
  }),
  MedicationRequest: z.looseObject({ ...common, ...medication, dosageInstruction: z.array(dosage).optional(), authoredOn: s }),
  MedicationStatement: z.looseObject({ ...common, ...medication, dosage: z.array(dosage).optional(), effectivePeriod: period.optional(), effectiveDateTime: s, dateAsserted: s }),
  Medication: z.looseObject({ ...common, code: concept.optional() }),
  DocumentReference: z.looseObject({
    ...common,
    docStatus: s,
    date: s,
    description: s,
    type: concept.optional(),
    category: concepts,
    context: z.looseObject({ period: period.optional(), encounter: z.array(reference).optional() }).optional(),
    content: z.array(z.looseObject({ attachment: attachment.optional() })).optional(),
  }),
  ImagingStudy: z.looseObject({
    ...common,
    identifier: z.array(z.looseObject({ system: s, value: s })).optional(),
    started: s,
    endpoint: z.array(reference).optional(),
    series: z
      .array(
        z.looseObject({
          uid: s,
          modality: coding.optional(),
          laterality: coding.optional(),
          bodySite: coding.optional(),
          endpoint: z.array(reference).optional(),
          started: s,
          instance: z.array(z.looseObject({ uid: s, sopClass: coding.optional() })).optional(),
        }),
      )
      .optional(),
  }),
  Media: z.looseObject({
    ...common,
    content: attachment.optional(),
    modality: concept.optional(),
    type: concept.optional(),
    view: concept.optional(),
    bodySite: concept.optional(),
    createdDateTime: s,
    issued: s,
  }),
  Binary: z.looseObject({ ...common, contentType: s, data: s }),
  Endpoint: z.looseObject({ ...common, address: s }),
};
const ANY = z.looseObject(common);

/** Top-level elements whose loss would change which records count (filters) or whose patient they are. */
const VITAL = new Set(['resourceType', 'id', 'status', 'docStatus', 'subject', 'patient', 'clinicalStatus', 'verificationStatus']);
/** After this many repairs a resource is skipped rather than mended further. */
const MAX_REPAIRS = 20;

type Path = readonly PropertyKey[];

/** The record holding a malformed value: up to its last array index (one item), else the top-level element. */
function recordOf(path: Path): Path {
  const last = path.findLastIndex((k) => typeof k === 'number');
  return last >= 0 ? path.slice(0, last + 1) : path.slice(0, 1);
}

/** A copy of `root` without the element at `path`; only the containers on the path are copied. */
function without(root: unknown, path: Path): unknown {
  if (path.length === 0) return root;
  const [head, ...rest] = path;
  if (Array.isArray(root)) {
    const i = head as number;
    return rest.length === 0 ? root.filter((_, j) => j !== i) : root.map((x, j) => (j === i ? without(x, rest) : x));
  }
  const o = obj(root);
  if (!o) return root;
  const copy: Json = {};
  for (const k of Object.keys(o)) if (k !== head) Object.defineProperty(copy, k, { value: o[k], enumerable: true, writable: true, configurable: true });
  if (rest.length > 0 && Object.hasOwn(o, head as string)) copy[head as string] = without(o[head as string], rest);
  return copy;
}

const label = (path: Path): string => path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('').replace(/^\./, '');

/** One resource: unchanged, mended (with the paths left out), or skipped (with the vital path that was malformed). */
export function screenResource(r: unknown): { resource?: Resource; removed: string[]; skipped?: string } {
  let cur = r;
  const removed: string[] = [];
  const type = str(obj(r)?.resourceType);
  const shape = (type !== undefined ? own(SHAPES, type) : undefined) ?? ANY;
  for (let n = 0; n <= MAX_REPAIRS; n++) {
    const res = shape.safeParse(cur);
    if (res.success) return { resource: cur as Resource, removed };
    const target = recordOf(res.error.issues[0]!.path);
    if (target.length === 0 || (target.length === 1 && VITAL.has(String(target[0])))) return { removed, skipped: label(target) || '(resource)' };
    removed.push(label(target));
    cur = without(cur, target);
  }
  return { removed, skipped: 'too many malformed elements' };
}

/**
 * The boundary check for one query's resources: Bundles unpacked, each resource screened. `source` names the
 * query in problems ('prefetch:media', 'conditions').
 */
export function screenResources(resources: readonly unknown[], source: string): { resources: Resource[]; problems: Problem[] } {
  const { list, tooDeep } = flattenResources(resources);
  const out: Resource[] = [];
  const problems: Problem[] = [];
  const problem = (message: string) => problems.push({ kind: 'malformed_resource', severity: 'warning', source, message });
  if (tooDeep > 0) problem(`${tooDeep} Bundle(s) nested more than ${MAX_BUNDLE_NESTING} deep were left out`);
  for (const { r } of list) {
    const type = own(SHAPES, r.resourceType) ? String(r.resourceType) : 'resource'; // a type we know: never echo attacker text
    const { resource, removed, skipped } = screenResource(r);
    if (skipped !== undefined) problem(`a ${type} with a malformed ${skipped} was skipped`);
    else if (removed.length > 0) problem(`a ${type} had malformed elements, left out: ${removed.slice(0, 5).join(', ')}${removed.length > 5 ? ', …' : ''}`);
    if (resource) out.push(resource);
  }
  return { resources: out, problems };
}
