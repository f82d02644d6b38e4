/**
 * Terminology used to pick clinical context out of FHIR (standards.md §5.3 plus widely used parents).
 * Local EHR codes are common, so conditions and medications also fall back to text matching.
 */
import type { ConditionCategory } from './types.js';

export const SNOMED = 'http://snomed.info/sct';
export const LOINC = 'http://loinc.org';
export const ICD10_SYSTEMS = new Set(['http://hl7.org/fhir/sid/icd-10-cm', 'http://hl7.org/fhir/sid/icd-10']);
export const UCUM = 'http://unitsofmeasure.org';

/** SNOMED CT concepts per condition category. */
export const CONDITION_SNOMED: Record<ConditionCategory, ReadonlySet<string>> = {
  diabetes: new Set([
    '73211009', // Diabetes mellitus
    '44054006', // Type 2 diabetes mellitus
    '46635009', // Type 1 diabetes mellitus
    '4855003', // Diabetic retinopathy (implies DM)
    '390834004', '312903003', '312904009', '312905005', '399876000', '59276001', // NPDR/PDR grades
    '312912001', // Macular edema due to DM
  ]),
  hypertension: new Set(['38341003' /* Hypertensive disorder */, '59621000' /* Essential hypertension */]),
  glaucoma: new Set(['23986001' /* Glaucoma */, '77075001' /* Primary open angle glaucoma */]),
};

/** ICD-10(-CM) code prefixes per category (the dot is ignored when matching). */
export const CONDITION_ICD10: Record<ConditionCategory, readonly string[]> = {
  diabetes: ['E08', 'E09', 'E10', 'E11', 'E13'],
  hypertension: ['I10', 'I11', 'I12', 'I13', 'I15', 'I16'],
  // H40.0 is "glaucoma suspect" / ocular hypertension: not glaucoma.
  glaucoma: ['H401', 'H402', 'H403', 'H404', 'H405', 'H406', 'H408', 'H409', 'H42'],
};

/** Text fallback for local codes; exclusions first (ocular hypertension is not systemic hypertension). */
export const CONDITION_TEXT: Record<ConditionCategory, { include: RegExp; exclude?: RegExp }> = {
  diabetes: { include: /\bdiabet(es|ic)\b|\bT[12]DM\b/i, exclude: /\binsipidus\b|\bpre-?diabet/i },
  hypertension: { include: /\bhypertensi(on|ve)\b|\bHTN\b/i, exclude: /\bocular hypertension\b|\bintracranial\b|\bpulmonary\b|\bportal\b/i },
  glaucoma: { include: /\bglaucoma\b/i, exclude: /\bsuspect\b/i },
};

export type ObservationKind = 'hba1c' | 'bp' | 'systolic' | 'diastolic' | 'va' | 'iop';

export interface ObservationCode {
  readonly kind: ObservationKind;
  readonly eye?: 'right' | 'left';
  readonly corrected?: boolean;
}

export const OBSERVATION_LOINC: Readonly<Record<string, ObservationCode>> = {
  '4548-4': { kind: 'hba1c' }, // Hemoglobin A1c/Hemoglobin.total in Blood
  '17856-6': { kind: 'hba1c' }, // ... by HPLC
  '4549-2': { kind: 'hba1c' }, // ... by Electrophoresis
  '59261-8': { kind: 'hba1c' }, // ... by IFCC protocol (mmol/mol)
  '85354-9': { kind: 'bp' }, // Blood pressure panel with all children optional
  '55284-4': { kind: 'bp' }, // Blood pressure systolic and diastolic
  '8480-6': { kind: 'systolic' },
  '8462-4': { kind: 'diastolic' },
  '79892-6': { kind: 'iop', eye: 'right' },
  '79893-4': { kind: 'iop', eye: 'left' },
  '79880-1': { kind: 'va', eye: 'right', corrected: true }, // best corrected, Snellen
  '79881-9': { kind: 'va', eye: 'left', corrected: true },
  '65893-0': { kind: 'va', eye: 'right', corrected: true },
  '79882-7': { kind: 'va', eye: 'right', corrected: false }, // uncorrected, Snellen
  '79883-5': { kind: 'va', eye: 'left', corrected: false },
  '98499-7': { kind: 'va', eye: 'right', corrected: false },
  '98498-9': { kind: 'va', eye: 'left', corrected: false },
};

/** SNOMED IOP observation with laterality in bodySite (Eye Care IG style). */
export const IOP_SNOMED = '41633001';
export const EYE_SITE_SNOMED: Readonly<Record<string, 'right' | 'left' | 'both'>> = {
  '362502000': 'right', '362503005': 'left', '362508001': 'both', '24028007': 'right', '7771000': 'left', '51440002': 'both',
};

export const OPHTHALMIC_ROUTE_SNOMED = '54485002';
/** Ophthalmic drugs (ATC S01) and systemic drugs with retinal toxicity, matched by name. */
export const EYE_DRUG_RE =
  /\b(latanoprost|bimatoprost|travoprost|tafluprost|timolol|betaxolol|brimonidine|apraclonidine|dorzolamide|brinzolamide|acetazolamide|netarsudil|pilocarpine|ranibizumab|aflibercept|bevacizumab|faricimab|brolucizumab|pegaptanib|dexamethasone intravitreal|fluocinolone|atropine|cyclopentolate|tropicamide|ketorolac|nepafenac|bromfenac|difluprednate|loteprednol|cyclosporine ophthalmic|lifitegrast|hydroxychloroquine|chloroquine|tamoxifen|ethambutol|pentosan|vigabatrin|AREDS2?)\b/i;
export const EYE_TEXT_RE = /\b(ophthalmic|eye ?drops?|intravitreal|each eye|both eyes|right eye|left eye)\b/i;
/** Laterality abbreviations: case-sensitive so ordinary words never match. */
export const EYE_ABBREV_RE = /\b(OU|OD|OS)\b/;
