/**
 * Every code the report builders emit, with its source (standards.md §5.3 and the cited sets).
 * Rule: no invented clinical codes. Where no code is listed, a CodeableConcept carries text only.
 */
import type { ConditionId } from '../findings/tasks.js';
import type { ExamEye } from '../findings/types.js';

export const LOINC = 'http://loinc.org';
export const SNOMED = 'http://snomed.info/sct';

export interface Code {
  system: string;
  code: string;
  display: string;
}

/** LOINC DR severity per eye (CMS131 CQL). No code exists for an eye of unknown laterality. */
export const DR_SEVERITY_BY_EYE: Record<Exclude<ExamEye, 'unknown'>, Code> = {
  right: { system: LOINC, code: '71491-5', display: 'Right eye Diabetic retinopathy severity level by Ophthalmoscopy' },
  left: { system: LOINC, code: '71490-7', display: 'Left eye Diabetic retinopathy severity level by Ophthalmoscopy' },
};

/** ICDR grade -> LOINC answer (LL2117-1) and SNOMED CT finding (VSAC 2.16.840.1.113883.3.526.3.1283). */
export const ICDR_ANSWERS: readonly { grade: number; label: string; loinc: Code; snomed?: Code }[] = [
  { grade: 0, label: 'No apparent retinopathy', loinc: { system: LOINC, code: 'LA18643-9', display: 'No apparent retinopathy' } },
  {
    grade: 1, label: 'Mild non-proliferative diabetic retinopathy',
    loinc: { system: LOINC, code: 'LA18644-7', display: 'Mild non-proliferative retinopathy' },
    snomed: { system: SNOMED, code: '312903003', display: 'Mild nonproliferative diabetic retinopathy' },
  },
  {
    grade: 2, label: 'Moderate non-proliferative diabetic retinopathy',
    loinc: { system: LOINC, code: 'LA18645-4', display: 'Moderate non-proliferative retinopathy' },
    snomed: { system: SNOMED, code: '312904009', display: 'Moderate nonproliferative diabetic retinopathy' },
  },
  {
    grade: 3, label: 'Severe non-proliferative diabetic retinopathy',
    loinc: { system: LOINC, code: 'LA18646-2', display: 'Severe non-proliferative retinopathy' },
    snomed: { system: SNOMED, code: '312905005', display: 'Severe nonproliferative diabetic retinopathy' },
  },
  {
    grade: 4, label: 'Proliferative diabetic retinopathy',
    loinc: { system: LOINC, code: 'LA18648-8', display: 'Proliferative retinopathy' },
    snomed: { system: SNOMED, code: '59276001', display: 'Proliferative retinopathy due to diabetes mellitus' },
  },
];

/** LOINC 105914-6 and its two answers (CMS131v14; VSAC 2.16.840.1.113883.3.464.1004.2616). */
export const AUTONOMOUS_DR_SCREENING: Code = {
  system: LOINC, code: '105914-6', display: 'Eye Diabetic retinopathy screening Autonomous artificial intelligence',
};
export const AUTONOMOUS_NEGATIVE: Code = { system: LOINC, code: 'LA34398-0', display: 'ETDRS Level 20 or lower, without macular edema' };
export const AUTONOMOUS_POSITIVE: Code = { system: LOINC, code: 'LA34399-8', display: 'ETDRS Level 35 or higher, with or without macular edema' };

/** SNOMED CT codes listed in standards.md §5.3 for the screened conditions; the others are text only. */
export const CONDITION_CODES: Partial<Record<ConditionId, Code>> = {
  amd: { system: SNOMED, code: '267718000', display: 'Age-related macular degeneration' },
  'diabetic-retinopathy': { system: SNOMED, code: '4855003', display: 'Diabetic retinopathy' },
  'macular-edema': { system: SNOMED, code: '37231002', display: 'Macular retinal edema' },
  glaucoma: { system: SNOMED, code: '23986001', display: 'Glaucoma' },
};

export const BODY_SITE: Record<Exclude<ExamEye, 'unknown'>, Code> = {
  right: { system: SNOMED, code: '362502000', display: 'Right eye structure' },
  left: { system: SNOMED, code: '362503005', display: 'Left eye structure' },
};

/** Report code: the procedure(s) the images came from (SNOMED, standards.md §5.3). */
export const FUNDUS_PHOTOGRAPHY: Code = { system: SNOMED, code: '20067007', display: 'Ocular fundus photography' };
export const OCT_RETINA: Code = { system: SNOMED, code: '700070005', display: 'Optical coherence tomography of retina' };

export const DIAGNOSTIC_IMAGING: Code = { system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'IMG', display: 'Diagnostic Imaging' };
export const OBSERVATION_IMAGING: Code = { system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'imaging', display: 'Imaging' };
export const DATA_ABSENT = 'http://terminology.hl7.org/CodeSystem/data-absent-reason';

/** The identifier system of everything VOLMO writes to an EHR (`<analysisId>/<what>`, src/writeback/identifiers.ts). */
export const WRITEBACK_SYSTEM = 'urn:volmo-cds:writeback';

/** AI Transparency on FHIR (http://hl7.org/fhir/uv/aitransparency) and the security labels it uses. */
export const AI_IG = 'http://hl7.org/fhir/uv/aitransparency';
export const AIAST: Code = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'AIAST', display: 'Artificial Intelligence asserted' };
export const AI_CONFIDENCE_URL = `${AI_IG}/StructureDefinition/AIconfidence`;
export const AI_KIND_URL = `${AI_IG}/StructureDefinition/aitransparency.AIKind`;
export const AI_DEVICE_TYPE: Code = { system: `${AI_IG}/CodeSystem/AIdeviceTypeCS`, code: 'Artificial-Intelligence', display: 'All kinds of Artificial Intelligence' };
export const AI_KIND_VLM: Code = { system: `${AI_IG}/CodeSystem/AIdeviceTypeCS`, code: 'Vision-Language-Models', display: 'Vision-Language Models' };
export const PROVENANCE_AUTHOR: Code = { system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author', display: 'Author' };

/** Test data labels for output of a model with random weights. */
export const RANDOM_WEIGHTS_BANNER = 'TEST MODEL WITH RANDOM WEIGHTS — NOT CLINICAL OUTPUT';
export const HTEST: Code = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HTEST', display: 'test health data' };
/** Project-local tag (not a clinical code) that carries the banner text itself. */
export const RANDOM_WEIGHTS_TAG: Code = { system: 'urn:volmo-cds:tag', code: 'random-weights-test-model', display: RANDOM_WEIGHTS_BANNER };
