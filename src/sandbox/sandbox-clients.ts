/** The OAuth clients the sandbox authorization server knows: this service's SMART app and backend, and the EHR simulator. */
import type { JSONWebKeySet } from 'jose';
import type { SandboxClient } from './auth-server.js';

export const SANDBOX_CLIENT_IDS = {
  /** The clinician-facing SMART app (EHR launch, PKCE; a public client, or confidential-asymmetric when the service signs assertions). */
  smartApp: 'volmo-smart-app',
  /** This service's SMART Backend Services client (private_key_jwt with the keys it serves at /.well-known/jwks.json). */
  backend: 'volmo-backend',
  /** The EHR simulator, which obtains the short-lived token it hands to the service as fhirAuthorization. */
  ehrSimulator: 'ehr-simulator',
} as const;

/** Resource types the EHR-side clients may read. */
export const READ_SCOPES = ['Patient', 'Encounter', 'Observation', 'Condition', 'ImagingStudy', 'DocumentReference', 'MedicationRequest', 'MedicationStatement', 'Media', 'Binary', 'Endpoint', 'Practitioner'];

/**
 * `backendJwks`: this service's public keys, registered inline (else fetched from its /.well-known/jwks.json).
 * `smartAppJwks`: given when the service runs with VOLMO_SMART_CLIENT_AUTH=private_key_jwt; the SMART app is then
 * registered confidential-asymmetric with these keys (the authorization server refuses it without a valid assertion).
 */
export function sandboxClients(opts: { publicUrl: string; ehrJwks: JSONWebKeySet; backendJwks?: JSONWebKeySet; smartAppJwks?: JSONWebKeySet }): SandboxClient[] {
  const patientRead = READ_SCOPES.map((r) => `patient/${r}.rs`).join(' ');
  const systemRead = READ_SCOPES.map((r) => `system/${r}.rs`).join(' ');
  return [
    {
      clientId: SANDBOX_CLIENT_IDS.smartApp,
      ...(opts.smartAppJwks ? { kind: 'confidential-asymmetric' as const, jwks: opts.smartAppJwks } : { kind: 'public' as const }),
      redirectUris: [`${opts.publicUrl}/launch/callback`],
      scope: `openid fhirUser launch launch/patient online_access ${patientRead} patient/DiagnosticReport.crus patient/Observation.c user/Provenance.crs user/Device.crs patient/DocumentReference.crus patient/ServiceRequest.c patient/CarePlan.c`,
    },
    {
      clientId: SANDBOX_CLIENT_IDS.backend,
      kind: 'backend',
      ...(opts.backendJwks ? { jwks: opts.backendJwks } : { jwksUri: `${opts.publicUrl}/.well-known/jwks.json` }),
      // Reads (the watcher, jobs) and the background draft's writes (src/writeback/background.ts `backgroundWriteScopes`).
      scope: `${systemRead} system/DiagnosticReport.crus system/Observation.crs system/Provenance.crs system/Device.crs system/DocumentReference.crs system/ServiceRequest.c system/CarePlan.c`,
    },
    {
      clientId: SANDBOX_CLIENT_IDS.ehrSimulator,
      kind: 'backend',
      jwks: opts.ehrJwks,
      // The EHR reads its own chart, what was filed to it included (the sandbox EHR page shows it).
      scope: `${systemRead} system/DiagnosticReport.rs system/Provenance.rs`,
    },
  ];
}
