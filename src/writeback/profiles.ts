/**
 * Write-back profiles: how an approved (or discarded) AI draft reaches one EHR, chosen per FHIR base.
 *   fhir-standard  DiagnosticReport + Observations + Device + Provenance in one transaction of conditional
 *                  creates (HAPI/Medplum-style servers, the sandbox); approval makes the report final.
 *   epic           no DiagnosticReport create: an unsigned (preliminary) clinical note, signed in Epic.
 *   oracle         DocumentReference only as final: nothing is written before the clinician approves.
 *   off            nothing is written (the default outside the sandbox).
 */
import { AppError } from '../errors.js';
import type { WritebackAction } from '../store/port.js';

export const WRITEBACK_PROFILES = ['off', 'fhir-standard', 'epic', 'oracle'] as const;
export type WritebackProfileName = (typeof WRITEBACK_PROFILES)[number];

export interface WritebackSettings {
  /** The profile for FHIR bases not in `byServer`. */
  profile: WritebackProfileName;
  /** Per FHIR base URL (no trailing slash), overriding `profile`. */
  byServer: Readonly<Record<string, WritebackProfileName>>;
}

const trim = (u: string) => u.replace(/\/+$/, '');

export function profileFor(settings: WritebackSettings, fhirBase: string): WritebackProfileName {
  const base = trim(fhirBase);
  for (const [k, v] of Object.entries(settings.byServer)) if (trim(k) === base) return v;
  return settings.profile;
}

/** Parses VOLMO_WRITEBACK_PROFILES (a JSON object: FHIR base URL -> profile); throws AppError('config_invalid'). */
export function parseProfileMap(raw: unknown): Record<string, WritebackProfileName> {
  if (raw === undefined || raw === '') return {};
  let v: unknown = raw;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v) as unknown;
    } catch {
      throw new AppError('config_invalid', 'VOLMO_WRITEBACK_PROFILES: not JSON (an object of FHIR base URL -> profile)');
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AppError('config_invalid', 'VOLMO_WRITEBACK_PROFILES: must be an object of FHIR base URL -> profile');
  const out: Record<string, WritebackProfileName> = {};
  for (const [k, p] of Object.entries(v)) {
    if (!/^https?:\/\//.test(k)) throw new AppError('config_invalid', `VOLMO_WRITEBACK_PROFILES: ${k} is not an http(s) URL`);
    if (!WRITEBACK_PROFILES.includes(p as WritebackProfileName)) throw new AppError('config_invalid', `VOLMO_WRITEBACK_PROFILES: ${k}: unknown profile (one of ${WRITEBACK_PROFILES.join(', ')})`);
    out[trim(k)] = p as WritebackProfileName;
  }
  return out;
}

/** SMART scopes the app needs (besides its read scopes) for a profile's writes with the clinician's token. */
export function writebackScopes(profile: WritebackProfileName): string[] {
  switch (profile) {
    case 'fhir-standard':
      // The AI Device and the Provenance lie outside any patient's compartment: user-level scopes for those two.
      return ['patient/DiagnosticReport.crus', 'patient/Observation.c', 'user/Device.crs', 'user/Provenance.crs', 'patient/ServiceRequest.c', 'patient/CarePlan.c'];
    case 'epic':
      // update: approval rewrites the unsigned note written in the background (writeback/background.ts).
      return ['patient/DocumentReference.crus'];
    case 'oracle':
      return ['patient/DocumentReference.crs'];
    default:
      return [];
  }
}

/** "What will be written, and where", in plain words for the clinician, before filing. */
export function describeWrite(profile: WritebackProfileName, action: WritebackAction, where: string): string {
  if (profile === 'off') return 'Write-back to the EHR is not configured for this EHR: nothing will be written.';
  if (action === 'discard') {
    if (profile === 'fhir-standard') return `Discard: if the draft report is already in the EHR (${where}) it is marked "entered in error"; otherwise nothing is written.`;
    return 'Discard: nothing is written to the EHR; the draft is marked discarded here.';
  }
  switch (profile) {
    case 'fhir-standard':
      return `Approve & file writes to ${where}: a final diagnostic report with your conclusion, you as performer and results interpreter, its AI findings as observations, the AI model as a device, and a provenance record (AI author, you as verifier).`;
    case 'epic':
      return `Approve & file writes to ${where}: an unsigned (preliminary) clinical note with your conclusion and the AI draft, in this encounter, for you to sign in Epic.`;
    default:
      return `Approve & file writes to ${where}: a signed (final) clinical note with your conclusion and the AI draft, authored by you.`;
  }
}
