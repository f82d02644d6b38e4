/**
 * Why a clinician may dismiss a VOLMO card: offered on cards as `overrideReasons` (CDS Hooks 2.0: Codings,
 * each with a display) and counted when feedback names one. A local code system: no standard one exists.
 */
export const OVERRIDE_REASON_SYSTEM = 'urn:volmo-cds:override-reason';

export const OVERRIDE_REASONS = [
  { system: OVERRIDE_REASON_SYSTEM, code: 'already-referred', display: 'Patient already under eye care or referred' },
  { system: OVERRIDE_REASON_SYSTEM, code: 'recent-eye-exam', display: 'Recent eye examination on record' },
  { system: OVERRIDE_REASON_SYSTEM, code: 'disagree-findings', display: 'I disagree with the AI findings' },
  { system: OVERRIDE_REASON_SYSTEM, code: 'image-quality', display: 'Images not adequate for this assessment' },
  { system: OVERRIDE_REASON_SYSTEM, code: 'not-relevant', display: 'Not relevant for this patient or visit' },
] as const;

/** The metric label for a feedback reason: one of ours, `other` for any other Coding, `none` without one. */
export function reasonLabel(reason: { system?: string; code?: string } | undefined): string {
  if (!reason?.code) return 'none';
  return OVERRIDE_REASONS.some((r) => r.system === reason.system && r.code === reason.code) ? reason.code : 'other';
}
