/** Wording of intervals, referrals and follow-ups (shared by plan lines, the note and the FHIR proposals). */
import type { FollowUp, FollowUpAction, Referral, Specialty } from './rules.js';

export const SPECIALTY_TEXT: Record<Specialty, string> = {
  ophthalmology: 'ophthalmology', retina: 'ophthalmology (retina)', glaucoma: 'ophthalmology (glaucoma)',
  'eye-care': 'an eye-care professional (optometry or ophthalmology)', 'primary-care': 'the primary clinician',
};

/** 1 -> "1 day", 14 -> "2 weeks", 30 -> "1 month", 365 -> "12 months". */
export function formatDays(days: number): string {
  const unit = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (days % 365 === 0) return unit((days / 365) * 12, 'month');
  if (days % 30 === 0) return unit(days / 30, 'month');
  if (days % 7 === 0) return unit(days / 7, 'week');
  return unit(days, 'day');
}

/** "in 6–12 months" / "within 1 month". */
export function formatInterval(fromDays: number | undefined, withinDays: number): string {
  if (fromDays === undefined) return `within ${formatDays(withinDays)}`;
  if (fromDays === withinDays) return `in ${formatDays(withinDays)}`;
  const [a, b] = [formatDays(fromDays), formatDays(withinDays)];
  const [na, ua] = a.split(' ');
  const [nb, ub] = b.split(' ');
  return ua!.replace(/s$/, '') === ub!.replace(/s$/, '') ? `in ${na}–${nb} ${ub}` : `in ${a} to ${b}`;
}

export function referralText(r: Referral): string {
  const tests = r.tests?.length ? ` (include ${r.tests.join(', ')})` : '';
  const urgency = r.priority === 'routine' ? '' : `${r.priority.toUpperCase()}: `;
  return `${urgency}refer to ${SPECIALTY_TEXT[r.to]} ${formatInterval(undefined, r.withinDays)}${tests}`;
}

const FOLLOW_UP_TEXT: Record<FollowUpAction, string> = {
  're-screen': 'retinal screening again',
  're-examine': 're-examine the retina',
  'repeat-imaging': 'repeat the photographs (with pupil dilation); if still ungradable, dilated eye examination',
  'clinician-review': 'clinician to grade the images',
  'bp-review': 'blood-pressure review with the primary clinician',
  'glycaemic-review': 'send the findings to the clinician managing diabetes and review glycaemic control',
};

export function followUpText(f: FollowUp): string {
  return `${FOLLOW_UP_TEXT[f.action]} ${formatInterval(f.fromDays, f.withinDays)}`;
}
