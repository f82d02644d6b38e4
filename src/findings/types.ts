/**
 * Minimal input/output types of the findings layer. Everything here is plain data so that the
 * runtime (model outputs) and evidence (ExamContext) can be produced elsewhere and replayed in tests.
 */

/**
 * The eye an exam (one image) is of. Not the evidence's `Eye` (src/evidence/types.ts), which a record can
 * also give as 'both' (a bilateral condition, a DICOM laterality of B): an exam is of one eye, or unknown.
 */
export type ExamEye = 'right' | 'left' | 'unknown';

/** DICOM modality (CID 29): OP = ophthalmic photography (fundus), OPT = ophthalmic tomography (OCT). */
export type Modality = 'OP' | 'OPT';

/** One image the evidence layer selected, already checked for gradability. */
export interface ImageRecord {
  id: string;
  eye: ExamEye;
  modality: Modality;
  /** Where the pixels came from: a FHIR reference ("Media/1", "ImagingStudy/2") or a DICOMweb URL. */
  source: string;
  /** Checksum of the image bytes (e.g. "sha256:..."), for audit. */
  contentHash: string;
  gradability: { gradable: boolean; reason?: string };
}

/**
 * Case text for the assessment-and-plan task, in VOLMO's profile sections. Absent sections are
 * rendered as "No … reported" exactly as in VOLMO's case-report prompts.
 */
export interface ClinicalProfile {
  medicalHistory?: string;
  familyHistory?: string;
  symptoms?: string;
  examinationFindings?: string;
  diagnosticImaging?: string;
}

export interface ExamContext {
  /** "Patient/<id>" (or urn:uuid:...) */
  patient: string;
  /** "Encounter/<id>", when the exam belongs to one. */
  encounter?: string;
  /** When the images were taken (ISO date-time). */
  effectiveDateTime: string;
  /** "ImagingStudy/<id>" references the images came from. */
  imagingStudies: string[];
  images: ImageRecord[];
  /** "DocumentReference/<id>" references of notes used to build the clinical profile. */
  notes: string[];
  profile?: ClinicalProfile;
  /**
   * An already rendered profile block ("[PATIENT CLINICAL PROFILE]\n...\n\n[DIAGNOSTIC IMAGING]\n..."),
   * e.g. EvidenceBundle.caseText; when present it is used verbatim instead of `profile`.
   */
  caseText?: string;
  /** Measurements from the record that plan rules depend on (src/findings/management). */
  facts?: ClinicalFacts;
}

/** Latest recorded values, per eye where it applies; absent = not documented. */
export interface ClinicalFacts {
  hba1cPercent?: number;
  bloodPressure?: { systolicMmHg: number; diastolicMmHg: number };
  iopMmHg?: { right?: number; left?: number };
  /** Visual acuity as logMAR (0 = 6/6; 0.3 = 6/12). */
  logMar?: { right?: number; left?: number };
  /**
   * When each value above was measured: the Observation's effective date as the record gives it (FHIR date or
   * dateTime, from effectiveDateTime / effectivePeriod / issued); absent where the record gives none.
   */
  measuredAt?: {
    hba1c?: string;
    bloodPressure?: string;
    iop?: { right?: string; left?: string };
    logMar?: { right?: string; left?: string };
  };
}

/** One model answer as the runtime returns it. */
export interface ModelAnswer {
  text: string;
  /**
   * Probability of each candidate answer token at the first answer position (softmax over the full
   * vocabulary, or already restricted). Keys are the decoded token text ("TRUE", "FALSE", "0".."4");
   * a leading SentencePiece "▁" or whitespace is ignored, matching is case-sensitive after that
   * except for TRUE/FALSE which are upper-cased.
   */
  candidates?: Record<string, number>;
  /**
   * Single-step "choice" answers only: whether the model's unconstrained greedy first token was one
   * of the candidates. false -> the answer is unparseable (the constrained pick is not accepted).
   */
  greedyIsCandidate?: boolean;
}

export interface ModelIdentity {
  name: string;
  version: string;
  manifestSha256: string;
  /** onnxruntime execution provider actually used, e.g. "cpu", "cuda". */
  executionProvider: string;
  /** True for test/bench models with random weights: output is never clinical. */
  random: boolean;
}
