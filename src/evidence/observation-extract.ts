/** Pure extraction of the latest HbA1c, blood pressure, visual acuity and IOP per eye from Observations. */
import type { CodeableConcept, Observation, Quantity, Ratio } from 'fhir/r4.js';
import { EYE_SITE_SNOMED, IOP_SNOMED, LOINC, OBSERVATION_LOINC, SNOMED, type ObservationCode } from './codes.js';
import { normaliseHba1c, parseVisualAcuity, pressureMmHg } from './measurements.js';
import { own } from './resource-shape.js';
import type { BloodPressure, Hba1c, IntraocularPressure, PatientContext, Problem, VisualAcuity } from './types.js';

type Measurements = Pick<PatientContext, 'hba1c' | 'bloodPressure' | 'visualAcuity' | 'iop'>;

interface Reading {
  readonly code: ObservationCode;
  readonly loinc?: string;
  readonly when: string | undefined;
  readonly quantity?: Quantity;
  readonly string?: string;
  readonly ratio?: Ratio;
}

const EXCLUDED_STATUS = new Set(['entered-in-error', 'cancelled']);

export function effectiveOf(o: Observation): string | undefined {
  return o.effectiveDateTime ?? o.effectiveInstant ?? o.effectivePeriod?.end ?? o.effectivePeriod?.start ?? o.issued;
}

function codeOf(cc: CodeableConcept | undefined, bodySite: CodeableConcept | undefined): { code: ObservationCode; loinc?: string } | undefined {
  for (const c of cc?.coding ?? []) {
    const code = c.system === LOINC ? own(OBSERVATION_LOINC, c.code) : undefined;
    if (code) return { code, loinc: c.code };
  }
  if (cc?.coding?.some((c) => c.system === SNOMED && c.code === IOP_SNOMED)) {
    const site = bodySite?.coding?.find((c) => c.system === SNOMED && own(EYE_SITE_SNOMED, c.code));
    const eye = own(EYE_SITE_SNOMED, site?.code);
    if (eye === 'right' || eye === 'left') return { code: { kind: 'iop', eye } };
  }
  return undefined;
}

function readings(o: Observation): Reading[] {
  const when = effectiveOf(o);
  const out: Reading[] = [];
  const own = codeOf(o.code, o.bodySite);
  if (own) out.push({ ...own, when, quantity: o.valueQuantity, string: o.valueString ?? o.valueCodeableConcept?.text, ratio: o.valueRatio });
  for (const comp of o.component ?? []) {
    const c = codeOf(comp.code, o.bodySite);
    if (c) out.push({ ...c, when, quantity: comp.valueQuantity, string: comp.valueString ?? comp.valueCodeableConcept?.text, ratio: comp.valueRatio });
  }
  return out;
}

function newerFirst(a: { when?: string }, b: { when?: string }): number {
  const ta = a.when ? Date.parse(a.when) : Number.NEGATIVE_INFINITY;
  const tb = b.when ? Date.parse(b.when) : Number.NEGATIVE_INFINITY;
  return (Number.isNaN(tb) ? -Infinity : tb) - (Number.isNaN(ta) ? -Infinity : ta);
}

const sameDay = (a?: string, b?: string) => a !== undefined && b !== undefined && a.slice(0, 10) === b.slice(0, 10);

export function extractMeasurements(observations: readonly Observation[]): { measurements: Measurements; problems: Problem[] } {
  const all = observations.filter((o) => !EXCLUDED_STATUS.has(o.status)).flatMap(readings).sort(newerFirst);
  const problems: Problem[] = [];
  const unknownUnit = (what: string) => {
    if (!problems.some((p) => p.source === `Observation:${what}`)) {
      problems.push({ kind: 'unit_unknown', severity: 'warning', source: `Observation:${what}`, message: `a ${what} value had a unit or format that could not be normalised; it was left out` });
    }
  };

  let hba1c: Hba1c | undefined;
  for (const r of all.filter((x) => x.code.kind === 'hba1c')) {
    const v = r.quantity ? normaliseHba1c(r.quantity) : undefined;
    if (v) { hba1c = { ...v, effective: r.when }; break; }
    unknownUnit('hba1c');
  }

  let bloodPressure: BloodPressure | undefined;
  const sys = all.filter((x) => x.code.kind === 'systolic');
  const dia = all.filter((x) => x.code.kind === 'diastolic');
  for (const s of sys) {
    const d = dia.find((x) => x.when === s.when) ?? dia.find((x) => sameDay(x.when, s.when));
    const sv = pressureMmHg(s.quantity);
    const dv = pressureMmHg(d?.quantity);
    if (sv !== undefined && dv !== undefined) { bloodPressure = { systolicMmHg: sv, diastolicMmHg: dv, effective: s.when }; break; }
    if (s.quantity && sv === undefined) unknownUnit('blood-pressure');
  }

  const iop: { right?: IntraocularPressure; left?: IntraocularPressure } = {};
  const visualAcuity: { right?: VisualAcuity; left?: VisualAcuity } = {};
  for (const eye of ['right', 'left'] as const) {
    for (const r of all.filter((x) => x.code.kind === 'iop' && x.code.eye === eye)) {
      const mmHg = pressureMmHg(r.quantity);
      if (mmHg !== undefined && mmHg >= 0 && mmHg < 90) { iop[eye] = { mmHg, effective: r.when }; break; }
      unknownUnit('iop');
    }
    // Latest first; on the same day prefer best-corrected.
    const va = all.filter((x) => x.code.kind === 'va' && x.code.eye === eye);
    const ranked = va.sort((a, b) =>
      sameDay(a.when, b.when) ? Number(Boolean(b.code.corrected)) - Number(Boolean(a.code.corrected)) || newerFirst(a, b) : newerFirst(a, b));
    for (const r of ranked) {
      const v = parseVisualAcuity({ string: r.string, ratio: r.ratio, quantity: r.quantity });
      if (v) { visualAcuity[eye] = { ...v, corrected: r.code.corrected, loinc: r.loinc, effective: r.when }; break; }
      unknownUnit('visual-acuity');
    }
  }
  return { measurements: { hba1c, bloodPressure, iop, visualAcuity }, problems };
}
