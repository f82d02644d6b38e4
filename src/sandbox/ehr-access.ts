/**
 * What the sandbox EHR does before it calls a hook: obtain a short-lived FHIR token for its own backend
 * client (SMART Backend Services, signed with the EHR simulator's key) and look fixture patients up by MRN.
 * Used by `npm run demo`, the benchmarks and the end-to-end tests.
 */
import type { EhrSimulator } from './ehr-simulator.js';
import { FIXTURE_MRN_SYSTEM } from './fixtures.js';
import { READ_SCOPES, SANDBOX_CLIENT_IDS } from './sandbox-clients.js';

export interface EhrToken {
  access_token: string;
  expires_in: number;
  scope: string;
}

export async function ehrToken(fhirBaseUrl: string, ehr: EhrSimulator, scopes: readonly string[] = READ_SCOPES.map((r) => `system/${r}.rs`)): Promise<EhrToken> {
  const smart = (await (await fetch(`${fhirBaseUrl}/.well-known/smart-configuration`)).json()) as { token_endpoint: string };
  const res = await fetch(smart.token_endpoint, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      scope: scopes.join(' '),
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await ehr.clientAssertion(smart.token_endpoint, SANDBOX_CLIENT_IDS.ehrSimulator),
    }),
  });
  if (!res.ok) throw new Error(`sandbox token endpoint answered ${res.status}`);
  return (await res.json()) as EhrToken;
}

/** The server id of a fixture patient (ids are assigned when the fixtures are loaded). */
export async function fixturePatientId(fhirBaseUrl: string, token: string, mrn: string): Promise<string> {
  const res = await fetch(`${fhirBaseUrl}/Patient?identifier=${encodeURIComponent(`${FIXTURE_MRN_SYSTEM}|${mrn}`)}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' },
  });
  const id = ((await res.json()) as { entry?: { resource: { id: string } }[] }).entry?.[0]?.resource.id;
  if (!id) throw new Error(`fixture patient ${mrn} is not on the sandbox FHIR server`);
  return id;
}
