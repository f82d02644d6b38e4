/**
 * The sandbox FHIR server can behave like a given EHR's write API, so each write-back profile is tested
 * against a server that refuses what that EHR refuses (standards.md §3.2 Epic, §4 Oracle Health):
 *   standard  everything the FHIR router accepts (transactions, conditional creates, If-Match);
 *   epic      no transaction/batch; no DiagnosticReport, Observation, Device, Provenance create or update;
 *             DocumentReference create only `status: current`, `docStatus` preliminary or final, with an
 *             encounter in context; DocumentReference update only of an unsigned note that stays unsigned
 *             (`docStatus: preliminary`; `status` current or entered-in-error) — modelled on Epic's
 *             "DocumentReference.Update (Clinical Notes)", *verify* per customer (docs/deployment.md); no delete;
 *             If-None-Exist ignored (Epic does not dedupe);
 *   oracle    no transaction/batch; no DiagnosticReport create (only cardiology/pathology exist there);
 *             DocumentReference create only `status: current`, `docStatus: final`, with `context.period.end`.
 * Reads are never refused here.
 */
export type SandboxEhrProfile = 'standard' | 'epic' | 'oracle';

export interface EhrRefusal {
  status: number;
  text: string;
}

const EPIC_NO_WRITE = new Set(['DiagnosticReport', 'Observation', 'Device', 'Provenance', 'ServiceRequest', 'CarePlan']);

/** Why this EHR would refuse the write, or undefined when it would accept it. `rel`: path under the FHIR base. */
export function ehrRefusal(profile: SandboxEhrProfile, method: string, rel: string, body: unknown): EhrRefusal | undefined {
  if (profile === 'standard' || method === 'GET' || method === 'HEAD') return undefined;
  const parts = rel.split('/').filter(Boolean);
  const type = parts[0];
  const name = profile === 'epic' ? 'Epic' : 'Oracle Health';
  if (method === 'POST' && parts.length === 0) return { status: 400, text: `${name} does not support transaction or batch Bundles` };
  if (!type || type.startsWith('$') || parts[parts.length - 1]?.startsWith('_search')) return undefined;
  const resource = (typeof body === 'object' && body !== null ? body : {}) as { docStatus?: string; status?: string; context?: { encounter?: unknown[]; period?: { end?: string } } };
  if (profile === 'epic') {
    if (EPIC_NO_WRITE.has(type)) return { status: 403, text: `${type} ${method === 'POST' ? 'create' : 'write'} is not available on Epic` };
    if (type === 'DocumentReference') {
      if (method === 'PUT') {
        if (resource.docStatus !== 'preliminary') return { status: 422, text: 'Only an unsigned (preliminary) note can be updated; it is signed in Epic' };
        if (resource.status !== 'current' && resource.status !== 'entered-in-error') return { status: 422, text: 'DocumentReference.status must be current or entered-in-error' };
        return undefined;
      }
      if (method !== 'POST') return { status: 405, text: 'Epic does not delete clinical notes through FHIR' };
      if (resource.status !== 'current') return { status: 422, text: 'DocumentReference.status must be current' };
      if (resource.docStatus !== 'preliminary' && resource.docStatus !== 'final') return { status: 422, text: 'DocumentReference.docStatus must be preliminary or final' };
      if (!Array.isArray(resource.context?.encounter) || resource.context.encounter.length === 0) return { status: 422, text: 'A clinical note needs an encounter (DocumentReference.context.encounter)' };
    }
    return undefined;
  }
  if (type === 'DiagnosticReport' && method === 'POST') return { status: 403, text: 'DiagnosticReport create is available only for cardiology and anatomic pathology reports' };
  if (type === 'DocumentReference' && method === 'POST') {
    if (resource.status !== 'current') return { status: 422, text: 'DocumentReference.status must be current' };
    if (resource.docStatus !== 'final') return { status: 422, text: 'DocumentReference.docStatus must be final for provider access' };
    if (!resource.context?.period?.end) return { status: 422, text: 'DocumentReference.context.period.end is required' };
  }
  return undefined;
}
