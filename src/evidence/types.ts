/**
 * The evidence contract: everything VOLMO gets about one patient, gathered from the EHR (FHIR) and PACS.
 * Clinical context (src/evidence/context*, owned by FHIR access) and images (src/evidence/images*, owned by
 * imaging) are filled independently and joined into one EvidenceBundle. Everything here may hold PHI:
 * never log a bundle or any part of it; log `problems[].kind/code/source` only.
 */
import type { ErrorCode } from '../errors.js';

export type Eye = 'right' | 'left' | 'both' | 'unknown';

/** A coded value as found in the record (system + code), with the display text we render. */
export interface CodedValue {
  readonly system?: string;
  readonly code?: string;
  readonly display: string;
}

/** Kind of problem met while gathering evidence. Stable strings: tests and cards switch on them. */
export type ProblemKind =
  | 'missing_data' // nothing recorded (e.g. no HbA1c) — informational
  | 'prefetch_error' // a prefetch value was an OperationOutcome / malformed; we fell back to fetching
  | 'fhir_error' // a FHIR query failed (timeout, 5xx, refused, bad body)
  | 'fhir_warning' // server returned an OperationOutcome warning/information alongside data
  | 'malformed_resource' // a record from the EHR had elements of the wrong type: those left out, or the record skipped
  | 'unit_unknown' // a value with a unit we could not normalise (value left out)
  | 'note_truncated' // a clinical note was cut to the size limit
  | 'note_unreadable' // a note attachment of an unsupported type or undecodable
  | 'pacs_unreachable' // DICOMweb endpoint failed (imaging)
  | 'image_rejected' // image refused: corrupt, bomb, unsupported format, wrong modality (imaging)
  | 'image_ungradable' // image decoded but failed the gradability gate (imaging)
  | 'image_duplicate' // identical content hash already present (imaging)
  | 'truncated'; // a list was capped (paging cap, too many notes/images)

export interface Problem {
  readonly kind: ProblemKind;
  readonly severity: 'info' | 'warning' | 'error';
  /** The AppError code behind it, when there was one. */
  readonly code?: ErrorCode;
  /** What was being gathered, PHI-free: e.g. 'Observation:hba1c', 'Condition', 'prefetch:patient', 'pacs'. */
  readonly source: string;
  /** Human-readable, PHI-free and token-free (safe to log and to show). */
  readonly message: string;
  /**
   * Images only: why the image could not be used, as stable codes (an ImageRejection reason, gradability
   * reasons, 'fetch_failed', 'pacs_unreachable'); cards say them in words (imaging/rejection.ts reasonInWords).
   */
  readonly reasons?: readonly string[];
}

// ---------- clinical context (filled by src/evidence/context*) ----------

export type ConditionCategory = 'diabetes' | 'hypertension' | 'glaucoma';

export interface ConditionSummary {
  readonly category: ConditionCategory;
  readonly coding: CodedValue;
  /** FHIR clinicalStatus code (active, recurrence, remission, resolved, ...) if given. */
  readonly clinicalStatus?: string;
  readonly onset?: string;
  readonly eye?: Eye;
}

export interface Hba1c {
  /** NGSP / DCCT percent. */
  readonly percent: number;
  /** IFCC mmol/mol. */
  readonly mmolPerMol: number;
  readonly reported: { readonly value: number; readonly unit: string };
  readonly effective?: string;
}

export interface BloodPressure {
  readonly systolicMmHg: number;
  readonly diastolicMmHg: number;
  readonly effective?: string;
}

export interface VisualAcuity {
  /** logMAR (0 = 20/20 = 6/6); derived from Snellen when that was what was recorded. */
  readonly logMar?: number;
  /** Snellen fraction as recorded or derived ("20/40", "6/12"). */
  readonly snellen?: string;
  /** Free-text values that we keep but cannot convert (CF, HM, LP, NLP). */
  readonly text?: string;
  readonly corrected?: boolean;
  readonly loinc?: string;
  readonly effective?: string;
}

export interface IntraocularPressure {
  readonly mmHg: number;
  readonly effective?: string;
}

export interface MedicationSummary {
  readonly coding: CodedValue;
  readonly status?: string;
  readonly dosage?: string;
  readonly eye?: Eye;
  readonly authoredOn?: string;
}

export interface ClinicalNote {
  /** 'DocumentReference/<id>' — PHI-adjacent, do not log. */
  readonly ref: string;
  readonly date?: string;
  readonly type?: string;
  readonly contentType: string;
  readonly text: string;
  readonly truncated: boolean;
}

export interface PatientContext {
  readonly ageYears?: number;
  readonly sex?: 'male' | 'female' | 'other' | 'unknown';
  readonly conditions: readonly ConditionSummary[];
  readonly hba1c?: Hba1c;
  readonly bloodPressure?: BloodPressure;
  readonly visualAcuity: { readonly right?: VisualAcuity; readonly left?: VisualAcuity };
  readonly iop: { readonly right?: IntraocularPressure; readonly left?: IntraocularPressure };
  readonly medications: readonly MedicationSummary[];
  readonly notes: readonly ClinicalNote[];
}

// ---------- images (filled by src/evidence/images* / src/imaging) ----------

export type ImageModality = 'OP' | 'OPT' | 'other';

export interface ImageProvenance {
  /** The FHIR resource it came from: 'ImagingStudy/x', 'Media/x', 'DocumentReference/x', 'Binary/x'. */
  readonly fhirRef?: string;
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
  readonly sopInstanceUid?: string;
  /** 1-based frame number for multi-frame objects (OCT volumes). */
  readonly frame?: number;
  /** Retrieval URL without credentials or query secrets. */
  readonly url?: string;
  /** How the pixels were obtained. */
  readonly via: 'wado-rendered' | 'wado-native' | 'fhir-attachment' | 'inline';
}

export interface Gradability {
  readonly status: 'gradable' | 'ungradable' | 'unchecked';
  /** Machine-readable reasons when ungradable, e.g. 'too_dark', 'too_blurred', 'no_disc'. */
  readonly reasons: readonly string[];
  readonly metrics?: Readonly<Record<string, number>>;
}

export interface EvidenceImage {
  /** sha256 hex of the source bytes (dedupe key). */
  readonly contentHash: string;
  readonly eye: Eye;
  readonly modality: ImageModality;
  readonly provenance: ImageProvenance;
  readonly gradability: Gradability;
  readonly mediaType?: string;
  readonly width?: number;
  readonly height?: number;
  readonly acquired?: string;
  /** Decoded, model-ready pixels (e.g. normalised JPEG/PNG bytes); absent when only metadata is carried. */
  readonly bytes?: Uint8Array;
}

export interface EvidenceImages {
  readonly right: readonly EvidenceImage[];
  readonly left: readonly EvidenceImage[];
  /** Laterality unknown or both eyes in one image. */
  readonly unknown: readonly EvidenceImage[];
}

// ---------- the bundle ----------

export interface EvidenceBundle {
  readonly version: 1;
  readonly patient: PatientContext;
  /** VOLMO case text: [PATIENT CLINICAL PROFILE] [MEDICAL HISTORY] [SYMPTOMS] [EXAMINATION FINDINGS] [DIAGNOSTIC IMAGING]. */
  readonly caseText: string;
  readonly images: EvidenceImages;
  readonly problems: readonly Problem[];
  /** Where the clinical data came from: prefetch keys used vs queries we ran ourselves (PHI-free labels). */
  readonly sources: { readonly prefetchUsed: readonly string[]; readonly fetched: readonly string[] };
  readonly timings?: { readonly fhirMs?: number; readonly pacsMs?: number; readonly imageMs?: number };
}

export const EMPTY_IMAGES: EvidenceImages = Object.freeze({ right: [], left: [], unknown: [] });
