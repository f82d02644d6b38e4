/**
 * Identifiers derived from the analysis id: the same analysis always writes the same identifiers, so a
 * conditional create (If-None-Exist / ifNoneExist) or a search finds what an earlier attempt wrote.
 */
import { createHash } from 'node:crypto';
import type { Identifier } from 'fhir/r4.js';
import { WRITEBACK_SYSTEM } from '../reports/codes.js';
import type { WritebackAction } from '../store/port.js';

export { WRITEBACK_SYSTEM };

/** `<analysisId>/<what>`, e.g. `a1b2/DiagnosticReport` or `a1b2/Observation/3`. */
export function writebackIdentifier(analysisId: string, what: string): Identifier {
  return { system: WRITEBACK_SYSTEM, value: `${analysisId}/${what}` };
}

/** The search for a resource carrying that identifier (`identifier=system|value`). */
export function identifierQuery(id: Identifier): string {
  return `identifier=${encodeURIComponent(`${id.system}|${id.value}`)}`;
}

/** The store's idempotency key: one per EHR FHIR base, analysis and action. */
export function idempotencyKey(fhirBase: string, analysisId: string, action: WritebackAction): string {
  return createHash('sha256').update(`${fhirBase.replace(/\/+$/, '')}\u0000${analysisId}\u0000${action}`, 'utf8').digest('hex');
}

/** `DiagnosticReport/7` from a Location such as `http://x/fhir/DiagnosticReport/7/_history/1` or `DiagnosticReport/7`. */
export function referenceFromLocation(location: string | undefined): string | undefined {
  if (!location) return undefined;
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?\/?$/.exec(location.split('?')[0]!);
  return m ? `${m[1]}/${m[2]}` : undefined;
}
