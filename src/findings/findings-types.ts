/** Output types of aggregation: per-image results, per-eye findings, flags and the derived referral. */
import type { Call } from './confidence.js';
import type { ManagementPlan } from './management/types.js';
import type { SkippedTask } from './plan.js';
import type { ParsedBoolean, ParsedDigit } from './parse.js';
import type { ConditionId } from './tasks.js';
import type { ExamEye, Modality } from './types.js';

export type ScreeningStatus = 'positive' | 'negative' | 'indeterminate' | 'unparseable' | 'ungradable' | 'not-assessed';
export type StageStatus = 'graded' | 'unparseable' | 'ungradable' | 'not-assessed';

export interface ScreeningImageResult {
  imageId: string;
  eye: ExamEye;
  condition: ConditionId;
  answer: ParsedBoolean;
  /** Normalised P(TRUE), when the runtime gave candidate probabilities. */
  pTrue?: number;
  status: Exclude<ScreeningStatus, 'ungradable' | 'not-assessed'>;
}

export interface StageImageResult {
  imageId: string;
  eye: ExamEye;
  answer: ParsedDigit;
  distribution?: Record<string, number>;
}

export interface ConditionFinding {
  condition: ConditionId;
  status: ScreeningStatus;
  /** Probability of the reported status (P(TRUE) for positive, 1-P(TRUE) for negative). */
  confidence?: number;
  imageIds: string[];
  /** Set by the consistency checks; never resolved automatically. */
  inconsistent: boolean;
}

export interface StageFinding {
  status: StageStatus;
  grade?: number;
  /** Normalised probability of `grade`. */
  confidence?: number;
  /** DR only: P(ICDR grade >= 2) and the thresholded call. */
  pReferable?: number;
  referable?: Call;
  imageIds: string[];
  inconsistent: boolean;
}

export interface EyeFindings {
  eye: ExamEye;
  images: { id: string; modality: Modality; gradable: boolean; reason?: string }[];
  screening: ConditionFinding[];
  drStage: StageFinding;
  macularHole: StageFinding;
}

export type FlagCode =
  | 'dr-screen-negative-but-staged' | 'dr-screen-positive-but-stage-zero' | 'images-disagree'
  | 'probability-contradicts-text' | 'unparseable-answer' | 'ungradable-image';

export interface Flag {
  code: FlagCode;
  eye: ExamEye | 'case';
  message: string;
}

export type Urgency = 'routine' | 'soon' | 'urgent' | 'undetermined';

export interface Referral {
  urgency: Urgency;
  /** Human-readable reasons, most severe first. */
  reasons: string[];
}

export interface ExamFindings {
  taskSetVersion: string;
  eyes: EyeFindings[];
  descriptions: { imageId: string; eye: ExamEye; text: string }[];
  assessPlan: { step: number; title: string; text: string }[];
  flags: Flag[];
  referral: Referral;
  /** Rule-derived management plan (and where VOLMO's own plan disagrees with it). */
  managementPlan: ManagementPlan;
  skipped: SkippedTask[];
  screeningResults: ScreeningImageResult[];
  stageResults: StageImageResult[];
}
