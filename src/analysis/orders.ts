/**
 * The orders an analysis was asked for: the eye orders (ServiceRequest…) of the hook calls that named it,
 * as their reference and the order's own name, so the SMART app can say which order each draft belongs to.
 * One analysis can serve several orders (it is keyed by images and history, not by order). Pure.
 */

export interface OrderRef {
  /** `ServiceRequest/<id>` as the hook's draft order gives it; absent when the draft order has no id. */
  reference?: string;
  /** The order's name as the EHR wrote it (code.text, else the first coding's display). */
  display?: string;
}

/** At most this many orders are kept per analysis (the oldest stay: the order that asked first). */
export const MAX_ORDERS = 10;

const key = (o: OrderRef) => o.reference ?? `display:${o.display ?? ''}`;

/** `a` followed by what `b` adds (one entry per reference, or per name when there is no reference). */
export function mergeOrders(a: readonly OrderRef[] | undefined, b: readonly OrderRef[] | undefined): OrderRef[] {
  const out: OrderRef[] = [];
  const seen = new Set<string>();
  for (const o of [...(a ?? []), ...(b ?? [])]) {
    if (seen.has(key(o)) || out.length >= MAX_ORDERS) continue;
    seen.add(key(o));
    out.push(o);
  }
  return out;
}

/** Whether `b` names an order `a` does not have. */
export function addsOrders(a: readonly OrderRef[] | undefined, b: readonly OrderRef[] | undefined): boolean {
  const have = new Set((a ?? []).map(key));
  return (b ?? []).some((o) => !have.has(key(o))) && (a ?? []).length < MAX_ORDERS;
}
