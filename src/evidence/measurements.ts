/** Pure unit handling for the measurements VOLMO sees: HbA1c, blood pressure, IOP, visual acuity. */
import type { Quantity, Ratio } from 'fhir/r4.js';
import type { Hba1c, VisualAcuity } from './types.js';

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

/** NGSP % <-> IFCC mmol/mol master equation: NGSP = 0.09148 * IFCC + 2.152. */
export const ifccToNgsp = (mmolMol: number) => 0.09148 * mmolMol + 2.152;
export const ngspToIfcc = (percent: number) => (percent - 2.152) / 0.09148;

function unitOf(q: Quantity): string {
  return (q.code ?? q.unit ?? '').trim();
}

/** HbA1c from a Quantity in %, mmol/mol or as a fraction; undefined when the unit is unknown or the value implausible. */
export function normaliseHba1c(q: Quantity): Omit<Hba1c, 'effective'> | undefined {
  if (typeof q.value !== 'number' || !Number.isFinite(q.value)) return undefined;
  const unit = unitOf(q).toLowerCase().replace(/\s+/g, '');
  let percent: number;
  if (unit === '%' || unit === 'percent' || unit === '%{hb}' || unit === '%hb') percent = q.value;
  else if (unit === 'mmol/mol' || unit === 'mmol/mol{hb}') percent = ifccToNgsp(q.value);
  else if ((unit === '1' || unit === '{ratio}' || unit === 'fraction') && q.value < 1) percent = q.value * 100;
  else return undefined;
  if (percent < 3 || percent > 25) return undefined;
  return { percent: round(percent, 1), mmolPerMol: Math.round(ngspToIfcc(percent)), reported: { value: q.value, unit: unitOf(q) } };
}

/** A pressure in mmHg from mm[Hg], mmHg or kPa. */
export function pressureMmHg(q: Quantity | undefined): number | undefined {
  if (!q || typeof q.value !== 'number' || !Number.isFinite(q.value)) return undefined;
  const unit = unitOf(q).toLowerCase().replace(/\s+/g, '');
  if (unit === 'mm[hg]' || unit === 'mmhg' || unit === 'mm hg') return round(q.value, 1);
  if (unit === 'kpa') return round(q.value * 7.50062, 1);
  return undefined;
}

/** Snellen 20/x from logMAR, rounded to a chart-like denominator. */
export function snellenFromLogMar(logMar: number): string {
  return `20/${Math.round(20 * 10 ** logMar)}`;
}

const SNELLEN_RE = /^(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)\s*(?:[+-]\s*\d)?$/;
const LOW_VISION_RE = /^(CF|HM|LP|NLP|count(ing)? fingers|hand motion|light perception|no light perception)\b/i;

function fromFraction(num: number, den: number, snellen: string): Omit<VisualAcuity, 'loinc' | 'effective' | 'corrected'> | undefined {
  if (!(num > 0 && den > 0)) return undefined;
  return { logMar: round(Math.log10(den / num), 2), snellen };
}

/**
 * Visual acuity from what an EHR records: a Snellen string ("20/40", "6/12", "20/40-2"), a Ratio, a
 * logMAR or decimal Quantity, or low-vision text (CF/HM/LP/NLP, kept as text). Undefined when not understood.
 */
export function parseVisualAcuity(value: { string?: string; ratio?: Ratio; quantity?: Quantity }): Omit<VisualAcuity, 'loinc' | 'effective' | 'corrected'> | undefined {
  if (value.string !== undefined) {
    const s = value.string.trim();
    const m = SNELLEN_RE.exec(s);
    if (m) return fromFraction(Number(m[1]), Number(m[2]), `${m[1]}/${m[2]}`);
    if (LOW_VISION_RE.test(s)) return { text: s.slice(0, 40) };
    return undefined;
  }
  if (value.ratio) {
    const n = value.ratio.numerator?.value;
    const d = value.ratio.denominator?.value;
    if (typeof n === 'number' && typeof d === 'number') return fromFraction(n, d, `${n}/${d}`);
    return undefined;
  }
  if (value.quantity && typeof value.quantity.value === 'number') {
    const unit = unitOf(value.quantity).toLowerCase();
    const v = value.quantity.value;
    if (unit.includes('logmar') && v >= -0.5 && v <= 3.5) return { logMar: round(v, 2), snellen: snellenFromLogMar(v) };
    if (unit.includes('decimal') && v > 0 && v <= 2.5) {
      const logMar = round(-Math.log10(v), 2);
      return { logMar, snellen: snellenFromLogMar(logMar) };
    }
  }
  return undefined;
}
