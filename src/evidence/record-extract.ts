/** Pure extraction of demographics, conditions and eye-relevant medications from FHIR R4 resources. */
import type { CodeableConcept, Condition, Dosage, MedicationRequest, MedicationStatement, Patient, Resource } from 'fhir/r4.js';
import { CONDITION_ICD10, CONDITION_SNOMED, CONDITION_TEXT, EYE_ABBREV_RE, EYE_DRUG_RE, EYE_SITE_SNOMED, EYE_TEXT_RE, ICD10_SYSTEMS, OPHTHALMIC_ROUTE_SNOMED, SNOMED } from './codes.js';
import { own } from './resource-shape.js';
import type { CodedValue, ConditionCategory, ConditionSummary, Eye, MedicationSummary, PatientContext } from './types.js';

/** Whole years between a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) and now; undefined if unparsable or in the future. */
export function ageInYears(birthDate: string | undefined, now: Date): number | undefined {
  const m = birthDate ? /^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?/.exec(birthDate) : null;
  if (!m) return undefined;
  const y = Number(m[1]);
  const mo = m[2] ? Number(m[2]) : 1;
  const d = m[3] ? Number(m[3]) : 1;
  let age = now.getUTCFullYear() - y;
  if (now.getUTCMonth() + 1 < mo || (now.getUTCMonth() + 1 === mo && now.getUTCDate() < d)) age--;
  return age >= 0 && age < 130 ? age : undefined;
}

export function demographics(patient: Patient | undefined, now: Date): Pick<PatientContext, 'ageYears' | 'sex'> {
  if (!patient) return {};
  const sex = patient.gender === 'male' || patient.gender === 'female' || patient.gender === 'other' || patient.gender === 'unknown' ? patient.gender : undefined;
  return { ageYears: ageInYears(patient.birthDate, now), sex };
}

/** The display text of a concept: text, else the first coding display, else the code. */
export function conceptDisplay(cc: CodeableConcept | undefined): string | undefined {
  if (!cc) return undefined;
  const c = cc.coding?.find((x) => x.display) ?? cc.coding?.[0];
  return (cc.text ?? c?.display ?? c?.code)?.slice(0, 200);
}

function conceptToCoded(cc: CodeableConcept, preferSystem?: (s: string) => boolean): CodedValue {
  const c = cc.coding?.find((x) => x.system && preferSystem?.(x.system)) ?? cc.coding?.[0];
  return { system: c?.system, code: c?.code, display: conceptDisplay(cc) ?? 'unnamed' };
}

export function categorise(cc: CodeableConcept | undefined): ConditionCategory | undefined {
  if (!cc) return undefined;
  const cats = Object.keys(CONDITION_SNOMED) as ConditionCategory[];
  for (const c of cc.coding ?? []) {
    if (!c.code) continue;
    if (c.system === SNOMED) {
      const hit = cats.find((cat) => CONDITION_SNOMED[cat].has(c.code!));
      if (hit) return hit;
    }
    if (c.system && ICD10_SYSTEMS.has(c.system)) {
      const code = c.code.replace('.', '').toUpperCase();
      const hit = cats.find((cat) => CONDITION_ICD10[cat].some((p) => code.startsWith(p)));
      if (hit) return hit;
    }
  }
  const text = [cc.text, ...(cc.coding ?? []).map((c) => c.display)].filter(Boolean).join(' ');
  return cats.find((cat) => CONDITION_TEXT[cat].include.test(text) && !CONDITION_TEXT[cat].exclude?.test(text));
}

const INACTIVE = new Set(['inactive', 'resolved', 'remission']);
const NOT_TRUE = new Set(['refuted', 'entered-in-error']);

export function eyeFromText(text: string | undefined): Eye | undefined {
  if (!text) return undefined;
  if (/\b(both eyes|each eye|bilateral)\b/i.test(text) || /\bOU\b/.test(text)) return 'both';
  const right = /\bright eye\b/i.test(text) || /\bOD\b/.test(text);
  const left = /\bleft eye\b/i.test(text) || /\bOS\b/.test(text);
  if (right && left) return 'both';
  return right ? 'right' : left ? 'left' : undefined;
}

export function summariseConditions(conditions: readonly Condition[]): ConditionSummary[] {
  const out: ConditionSummary[] = [];
  const seen = new Set<string>();
  for (const c of conditions) {
    const clinical = c.clinicalStatus?.coding?.[0]?.code;
    const verification = c.verificationStatus?.coding?.[0]?.code;
    if ((clinical && INACTIVE.has(clinical)) || (verification && NOT_TRUE.has(verification))) continue;
    const category = categorise(c.code);
    if (!category || !c.code) continue;
    const coding = conceptToCoded(c.code, (s) => s === SNOMED);
    const key = `${category}|${coding.display.toLowerCase()}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const site = c.bodySite?.map((b) => conceptDisplay(b)).join(' ');
    out.push({
      category,
      coding,
      clinicalStatus: clinical,
      onset: c.onsetDateTime ?? c.onsetPeriod?.start ?? c.recordedDate,
      eye: eyeFromText(`${site ?? ''} ${coding.display}`),
    });
  }
  const order: ConditionCategory[] = ['diabetes', 'hypertension', 'glaucoma'];
  return out.sort((a, b) => order.indexOf(a.category) - order.indexOf(b.category));
}

type MedicationRecord = MedicationRequest | MedicationStatement;

const CURRENT_STATUS = new Set(['active', 'on-hold', 'draft', 'intended']);

function dosagesOf(m: MedicationRecord): Dosage[] {
  return (m.resourceType === 'MedicationRequest' ? m.dosageInstruction : m.dosage) ?? [];
}

function isEyeMedication(name: string, dosages: readonly Dosage[]): boolean {
  const route = dosages.some((d) => d.route?.coding?.some((c) => c.system === SNOMED && c.code === OPHTHALMIC_ROUTE_SNOMED) || /ophthalm|intravitreal/i.test(conceptDisplay(d.route) ?? ''));
  const site = dosages.some((d) => d.site?.coding?.some((c) => c.system === SNOMED && own(EYE_SITE_SNOMED, c.code) !== undefined));
  const text = dosages.map((d) => d.text ?? '').join(' ');
  return route || site || EYE_DRUG_RE.test(name) || EYE_TEXT_RE.test(text) || EYE_ABBREV_RE.test(text) || /ophthalmic|eye drop|intravitreal/i.test(name);
}

function eyeOfDosages(dosages: readonly Dosage[]): Eye | undefined {
  const sites = dosages.flatMap((d) => d.site?.coding ?? []).map((c) => (c.system === SNOMED ? own(EYE_SITE_SNOMED, c.code) : undefined)).filter(Boolean);
  if (sites.length > 0) return sites.includes('both') || (sites.includes('right') && sites.includes('left')) ? 'both' : sites[0];
  return eyeFromText(dosages.map((d) => d.text ?? '').join(' '));
}

/**
 * Current medications (orders and the medication list) that act on or endanger the eye, deduplicated by
 * name. `contained` resolves medicationReference to Medication resources returned alongside.
 */
export function summariseEyeMedications(records: readonly MedicationRecord[], contained: readonly Resource[] = []): MedicationSummary[] {
  const out: MedicationSummary[] = [];
  const seen = new Set<string>();
  for (const m of records) {
    if (m.status && !CURRENT_STATUS.has(m.status)) continue;
    let concept = m.medicationCodeableConcept;
    if (!concept && m.medicationReference) {
      const ref = m.medicationReference.reference ?? '';
      const med = [...(m.contained ?? []), ...contained].find((r) => r.resourceType === 'Medication' && (ref === `#${r.id}` || ref.endsWith(`Medication/${r.id}`)));
      concept = (med as { code?: CodeableConcept } | undefined)?.code ?? (m.medicationReference.display ? { text: m.medicationReference.display } : undefined);
    }
    const name = conceptDisplay(concept);
    const dosages = dosagesOf(m);
    if (!name || !concept || !isEyeMedication(name, dosages) || seen.has(name.toLowerCase())) continue;
    seen.add(name.toLowerCase());
    const dosage = dosages.map((d) => d.text).filter(Boolean).join('; ').slice(0, 200) || undefined;
    const authoredOn = m.resourceType === 'MedicationRequest' ? m.authoredOn : (m.effectivePeriod?.start ?? m.effectiveDateTime ?? m.dateAsserted);
    out.push({ coding: conceptToCoded(concept), status: m.status, dosage, eye: eyeOfDosages(dosages), authoredOn });
  }
  return out;
}
