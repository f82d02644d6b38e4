/**
 * Which orders are eye orders: order-select and order-sign fire for every order an EHR user enters, and an
 * eye-imaging service has nothing to say about a statin or a chest X-ray. Decided from the order's codes
 * (CPT, SNOMED CT, LOINC; docs/clinical-logic.md lists them with their sources), then from its text.
 * Pure: the draft orders are untrusted JSON and are read defensively.
 */

import type { OrderRef } from '../analysis/orders.js';

const CPT = 'http://www.ama-assn.org/go/cpt';
const SNOMED = 'http://snomed.info/sct';
const LOINC = 'http://loinc.org';

/** Codes of eye-related orders by code system. */
export const EYE_ORDER_CODES: Readonly<Record<string, ReadonlySet<string>>> = {
  [CPT]: new Set([
    '92250', // fundus photography with interpretation and report
    '92227', '92228', '92229', // remote imaging for detection of retinal disease (92229: point-of-care autonomous AI)
    '92133', '92134', // OCT, optic nerve / retina
    '92201', '92202', // extended ophthalmoscopy
    '92002', '92004', '92012', '92014', // ophthalmological examination, new / established patient
    '67028', // intravitreal injection of a pharmacologic agent
    '2022F', '2023F', '2024F', '2025F', '2026F', '2033F', // diabetic eye exam (CPT II, quality reporting)
  ]),
  [SNOMED]: new Set([
    '20067007', // ocular fundus photography
    '314971001', // camera fundoscopy
    '700070005', // optical coherence tomography of retina
    '722161008', // diabetic retinal eye exam
    '418401004', // intravitreal route (a medication order given into the eye)
  ]),
  [LOINC]: new Set([
    '105914-6', // eye diabetic retinopathy screening, autonomous AI
    '87674-8', // optical coherence tomography study
    '71490-7', '71491-5', // diabetic retinopathy severity, left / right eye
  ]),
};

/** Text of eye orders where codes are local (Epic procedure records, free-text referrals). */
const EYE_TEXT = /\b(?:retin\w*|fundus|fundoscop\w*|ophthalm\w*|optometr\w*|eye exam\w*|diabetic eye|optical coherence|oct (?:retina|macula|optic)|intravitreal|macula\w*|anti-?vegf)\b/i;

interface CodingLike {
  system?: unknown;
  code?: unknown;
  display?: unknown;
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
}

function conceptsOf(resource: Record<string, unknown>): unknown[] {
  const route = asArray(resource.dosageInstruction).flatMap((d) => (d && typeof d === 'object' ? [(d as Record<string, unknown>).route] : []));
  return [resource.code, resource.medicationCodeableConcept, ...asArray(resource.category), ...asArray(resource.performerType), ...asArray(resource.reasonCode), ...route];
}

function conceptIsEye(concept: unknown): boolean {
  if (!concept || typeof concept !== 'object') return false;
  const c = concept as { coding?: unknown; text?: unknown };
  for (const coding of asArray(c.coding)) {
    if (!coding || typeof coding !== 'object') continue;
    const { system, code, display } = coding as CodingLike;
    if (typeof system === 'string' && typeof code === 'string' && EYE_ORDER_CODES[system]?.has(code)) return true;
    if (typeof display === 'string' && EYE_TEXT.test(display)) return true;
  }
  return typeof c.text === 'string' && EYE_TEXT.test(c.text);
}

/** Whether one draft order (ServiceRequest, MedicationRequest, …) is eye-related. */
export function isEyeOrder(resource: unknown): boolean {
  if (!resource || typeof resource !== 'object') return false;
  return conceptsOf(resource as Record<string, unknown>).some(conceptIsEye);
}

/** The orders of the hook that count: for order-select the selected ones, for order-sign all draft orders. */
export function ordersInScope(context: { draftOrders?: unknown; selections?: unknown }, hook: string): unknown[] {
  const entries = asArray((context.draftOrders as { entry?: unknown } | undefined)?.entry);
  const resources = entries.map((e) => (e && typeof e === 'object' ? (e as { resource?: unknown }).resource : undefined)).filter((r) => r && typeof r === 'object');
  if (hook !== 'order-select') return resources;
  const selected = new Set(asArray(context.selections).filter((s): s is string => typeof s === 'string'));
  return resources.filter((r) => {
    const { resourceType, id } = r as { resourceType?: unknown; id?: unknown };
    return selected.has(`${String(resourceType)}/${String(id)}`);
  });
}

/** Whether the hook concerns the eyes: an order hook only when an order in scope is an eye order; patient-view is no order hook. */
export function hookConcernsEyes(hook: string, context: { draftOrders?: unknown; selections?: unknown }): boolean {
  if (hook === 'patient-view') return true;
  return ordersInScope(context, hook).some(isEyeOrder);
}

const ORDER_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const ORDER_TYPE = /^[A-Z][A-Za-z]{1,40}$/;

/**
 * The reference and name of each order (analysis/orders.ts), read defensively: `ServiceRequest/<id>` only
 * for a well-formed type and id, the name from code.text or the first coding's display, at most 200 characters.
 */
export function orderRefs(resources: readonly unknown[]): OrderRef[] {
  return resources.flatMap((r) => {
    if (!r || typeof r !== 'object') return [];
    const { resourceType, id, code } = r as { resourceType?: unknown; id?: unknown; code?: unknown };
    const reference = typeof resourceType === 'string' && ORDER_TYPE.test(resourceType) && typeof id === 'string' && ORDER_ID.test(id) ? `${resourceType}/${id}` : undefined;
    const c = code && typeof code === 'object' ? (code as { text?: unknown; coding?: unknown }) : undefined;
    const coded = asArray(c?.coding).find((x): x is { display: string } => Boolean(x && typeof x === 'object' && typeof (x as CodingLike).display === 'string'));
    const name = typeof c?.text === 'string' && c.text.trim() ? c.text.trim() : coded?.display.trim();
    const display = name ? name.slice(0, 200) : undefined;
    return reference || display ? [{ ...(reference ? { reference } : {}), ...(display ? { display } : {}) }] : [];
  });
}
