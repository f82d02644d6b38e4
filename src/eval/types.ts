/** Types of `volmo eval`: a labelled dataset, the stored per-image result, and the scored case. */
import type { EvidenceImage } from '../evidence/types.js';
import type { Call } from '../findings/confidence.js';
import type { ConditionId } from '../findings/tasks.js';
import type { ModelAnswer } from '../findings/types.js';

export type Layout = 'csv' | 'idrid' | 'octdl';
export const LAYOUTS: readonly Layout[] = ['csv', 'idrid', 'octdl'];

/** The reference standard for one image; an absent field is "not labelled" (never "negative"). */
export interface Labels {
  conditions: Partial<Record<ConditionId, boolean>>;
  /** ICDR grade 0–4. */
  icdrGrade?: number;
  /** Macular-hole stage 1–4. */
  macularHoleStage?: number;
}

export interface EvalItem {
  /** Path relative to the dataset root, "/"-separated: the resume key. */
  key: string;
  /** Absolute path of the image file. */
  file: string;
  eye: 'right' | 'left' | 'unknown';
  /** Declared modality; undefined = the image gate decides (fundus photographs are recognised). */
  modality?: 'OP' | 'OPT';
  labels: Labels;
}

export interface Dataset {
  layout: Layout;
  root: string;
  items: EvalItem[];
  /** What the reader assumed (label mappings, ignored files), shown in the report. */
  notes: string[];
}

/**
 * What happened to one image, as kept in results.jsonl: `assessed` (the model answered), `ungradable`
 * (the gradability gate), `rejected` (the image checks: corrupt, too small, unsupported), or
 * `not-assessed` (decoded, but neither a fundus photograph nor a declared OCT: the service asks nothing).
 */
export type Outcome = 'assessed' | 'ungradable' | 'rejected' | 'not-assessed';

export interface ImageResult {
  key: string;
  /** sha256 of the file's bytes: a changed file is run again. */
  fileSha256: string;
  outcome: Outcome;
  /** Gate or rejection reasons. */
  reasons: string[];
  /** The checked image without its pixels (recreates the service's ExamContext). */
  image?: Omit<EvidenceImage, 'bytes'>;
  /** Model answers keyed by planned task key. */
  answers?: Record<string, ModelAnswer>;
  modelMs?: number;
}

/** The service's decision for one labelled question, from its own findings code. */
export type ServiceCall = Call | 'unparseable';

export interface ScoredImage {
  key: string;
  outcome: Outcome;
  labels: Labels;
  screening: Partial<Record<ConditionId, { call: ServiceCall; p?: number }>>;
  /** Parsed ICDR grade; null = unparseable; absent = not asked. */
  drGrade?: number | null;
  /** P(ICDR >= 2) from the answer-token probabilities. */
  pReferableDr?: number;
  /** The service's referable-DR call (ICDR >= 2 by grade and probability band). */
  referableDrCall?: ServiceCall;
  macularHoleStage?: number | null;
}
