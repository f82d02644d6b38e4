/**
 * The review page's first screen: a per-eye summary in plain clinical words (DR stage, positive findings, each
 * with its confidence), the case's referral urgency, and the measurements on record the rules used (visual
 * acuity, IOP, HbA1c, blood pressure). No internal codes.
 */
import type { ExamFindings, StageFinding } from '../src/findings/findings-types.js';
import type { ClinicalFacts } from '../src/findings/types.js';
import { CONDITIONS } from '../src/findings/tasks.js';
import { ICDR_ANSWERS } from '../src/reports/codes.js';

export interface EyeSummaryView {
  referral: string;
  eyes: { eye: string; drStage: string; referableDr?: string; positive: string[]; ungradable: boolean }[];
  /** The supporting measurements the analysis used (visual acuity, IOP, HbA1c, blood pressure), or that none is on record. */
  measurements: string[];
}

const EYE = { right: 'Right eye', left: 'Left eye', unknown: 'Eye not recorded' } as const;
const REFERRAL = {
  urgent: 'Urgent ophthalmology referral suggested',
  soon: 'Ophthalmology review suggested',
  routine: 'No referable findings',
  undetermined: 'Could not be assessed',
} as const;

const pct = (p: number | undefined) => (p === undefined || !Number.isFinite(p) ? '' : ` (confidence ${Math.round(p * 100)}%)`);

function drStage(s: StageFinding): string {
  switch (s.status) {
    case 'graded': {
      const label = ICDR_ANSWERS.find((a) => a.grade === s.grade)?.label ?? 'Graded';
      return `${label}${pct(s.confidence)}`;
    }
    case 'ungradable':
      return 'Not graded: no usable image';
    case 'unparseable':
      return 'Not graded: the model gave no usable answer';
    default:
      return 'Not assessed';
  }
}

const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '?');
const perEye = (v: { right?: number; left?: number } | undefined, show: (n: number) => string) =>
  `right ${v?.right === undefined ? 'not documented' : show(v.right)}, left ${v?.left === undefined ? 'not documented' : show(v.left)}`;

/** The measurements on record that the rules used, in plain words; "not documented" where the record has none. */
export function measurementLines(facts: ClinicalFacts | undefined): string[] {
  const f = facts ?? {};
  return [
    `Visual acuity (logMAR): ${perEye(f.logMar, (n) => fixed(n, 2))}`,
    `Intraocular pressure: ${perEye(f.iopMmHg, (n) => `${fixed(n, 0)} mmHg`)}`,
    `HbA1c: ${f.hba1cPercent === undefined ? 'not documented' : `${fixed(f.hba1cPercent, 1)}%`}`,
    `Blood pressure: ${f.bloodPressure ? `${fixed(f.bloodPressure.systolicMmHg, 0)}/${fixed(f.bloodPressure.diastolicMmHg, 0)} mmHg` : 'not documented'}`,
  ];
}

export function eyeSummary(f: ExamFindings, facts?: ClinicalFacts): EyeSummaryView {
  return {
    measurements: measurementLines(facts),
    referral: REFERRAL[f.referral.urgency],
    eyes: f.eyes.map((e) => ({
      eye: EYE[e.eye],
      drStage: drStage(e.drStage),
      ...(e.drStage.referable && e.drStage.pReferable !== undefined
        ? { referableDr: `${e.drStage.referable === 'positive' ? 'Referable' : e.drStage.referable === 'negative' ? 'Not referable' : 'Uncertain'} (probability ${Math.round(e.drStage.pReferable * 100)}%)` }
        : {}),
      positive: e.screening
        .filter((c) => c.status === 'positive')
        .map((c) => `${CONDITIONS.find((d) => d.id === c.condition)?.label ?? 'Finding'}${pct(c.confidence)}${c.inconsistent ? ' — images disagree' : ''}`),
      ungradable: e.images.length > 0 && e.images.every((i) => !i.gradable),
    })),
  };
}
