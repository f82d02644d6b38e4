/**
 * The review page's first screen: a per-eye summary in plain clinical words (DR stage, positive findings, each
 * with its confidence) and the case's referral urgency, from the analysis's findings. No internal codes.
 */
import type { ExamFindings, StageFinding } from '../src/findings/findings-types.js';
import { CONDITIONS } from '../src/findings/tasks.js';
import { ICDR_ANSWERS } from '../src/reports/codes.js';

export interface EyeSummaryView {
  referral: string;
  eyes: { eye: string; drStage: string; referableDr?: string; positive: string[]; ungradable: boolean }[];
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

export function eyeSummary(f: ExamFindings): EyeSummaryView {
  return {
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
