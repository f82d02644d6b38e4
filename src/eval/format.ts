/** Number formatting shared by the console summary and the HTML report. */
import type { Estimate } from './summary.js';

export function pct(v: number | null | undefined): string {
  return v === null || v === undefined ? 'n/a' : `${(v * 100).toFixed(1)}%`;
}

export function num(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined ? 'n/a' : v.toFixed(digits);
}

/** "87.2% (81.8–91.2)" or "n/a". */
export function pctCi(e: Estimate): string {
  if (e.value === null) return 'n/a';
  return e.ci ? `${pct(e.value)} (${(e.ci.lower * 100).toFixed(1)}–${(e.ci.upper * 100).toFixed(1)})` : pct(e.value);
}

/** "0.812 (0.700–0.901)" or "n/a". */
export function numCi(e: Estimate): string {
  if (e.value === null) return 'n/a';
  return e.ci ? `${num(e.value)} (${num(e.ci.lower)}–${num(e.ci.upper)})` : num(e.value);
}
