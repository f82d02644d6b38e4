/**
 * The review page's first screen: a per-eye summary in plain clinical words (DR stage, positive findings, each
 * with its confidence), the case's referral urgency, and the measurements on record the rules used (visual
 * acuity, IOP, HbA1c, blood pressure), each with the date the record gives it. No internal codes.
 */
import type { ExamFindings, StageFinding } from '../src/findings/findings-types.js';
import type { ClinicalFacts } from '../src/findings/types.js';
import { CONDITIONS } from '../src/findings/tasks.js';
import { ICDR_ANSWERS } from '../src/reports/codes.js';
import { dateText } from './local-date.js';

export interface EyeSummaryView {
  referral: string;
  eyes: { eye: string; drStage: string; referableDr?: string; positive: string[]; ungradable: boolean }[];
  /** The supporting measurements the analysis used (visual acuity, IOP, HbA1c, blood pressure) with their dates, or that none is on record. */
  measurements: MeasurementView[];
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

/** One measurement on record: its name and each value (per eye where it is per eye), each with its date. */
export interface MeasurementView {
  label: string;
  /** "right 0.30", "8.4%", "not documented"…; `date` as the record gives it (shown as a local date). */
  values: { text: string; date?: string }[];
}

const perEye = (label: string, v: { right?: number; left?: number } | undefined, at: { right?: string; left?: string } | undefined, show: (n: number) => string): MeasurementView => ({
  label,
  values: (['right', 'left'] as const).map((eye) => {
    const n = v?.[eye];
    const date = n === undefined ? undefined : at?.[eye];
    return { text: `${eye} ${n === undefined ? 'not documented' : show(n)}`, ...(date ? { date } : {}) };
  }),
});

const single = (label: string, text: string | undefined, date: string | undefined): MeasurementView => ({
  label,
  values: [text === undefined ? { text: 'not documented' } : { text, ...(date ? { date } : {}) }],
});

/** The measurements on record that the rules used, each with the date it was measured; "not documented" where the record has none. */
export function measurements(facts: ClinicalFacts | undefined): MeasurementView[] {
  const f = facts ?? {};
  const at = f.measuredAt ?? {};
  return [
    perEye('Visual acuity (logMAR)', f.logMar, at.logMar, (n) => fixed(n, 2)),
    perEye('Intraocular pressure', f.iopMmHg, at.iop, (n) => `${fixed(n, 0)} mmHg`),
    single('HbA1c', f.hba1cPercent === undefined ? undefined : `${fixed(f.hba1cPercent, 1)}%`, at.hba1c),
    single('Blood pressure', f.bloodPressure ? `${fixed(f.bloodPressure.systolicMmHg, 0)}/${fixed(f.bloodPressure.diastolicMmHg, 0)} mmHg` : undefined, at.bloodPressure),
  ];
}

/** The same as plain text lines, each date as the record wrote it (the page shows it as a local date). */
export function measurementLines(facts: ClinicalFacts | undefined): string[] {
  return measurements(facts).map((m) => `${m.label}: ${m.values.map((v) => `${v.text}${v.date && dateText(v.date) ? ` (${dateText(v.date)})` : ''}`).join(', ')}`);
}

export function eyeSummary(f: ExamFindings, facts?: ClinicalFacts): EyeSummaryView {
  return {
    measurements: measurements(facts),
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
