/**
 * What the sandbox EHR does before it calls a hook: obtain a short-lived FHIR token for its own backend
 * client (SMART Backend Services, signed with the EHR simulator's key) and look fixture patients up by MRN.
 * Used by `npm run demo`, the benchmarks and the end-to-end tests.
 */
import { draftOrders, eyeExamOrder } from './orders.js';
import { CDS_SERVICES } from '../../cds-hooks/index.js';
import type { EhrSimulator, HookCall } from './ehr-simulator.js';
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

async function fhirJson(url: string, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' } });
  if (!res.ok) throw new Error(`FHIR ${res.status} for ${new URL(url).pathname}`);
  return (await res.json()) as Record<string, unknown>;
}

export interface SandboxHookOptions {
  /** The service's base URL (the hook goes to <base>/cds-services/<id>). */
  serviceBaseUrl: string;
  fhirBaseUrl: string;
  token: EhrToken;
  patientId: string;
  hook: HookCall['hook'];
  /** Send the service's prefetch, read from the FHIR server the way an EHR fills it. */
  prefetch: boolean;
  /** Send fhirServer + fhirAuthorization. */
  withToken: boolean;
}

/** The hook call the sandbox EHR makes: context (a draft eye-exam order for the order hooks), prefetch, token. */
export async function sandboxHookCall(o: SandboxHookOptions): Promise<HookCall> {
  const service = CDS_SERVICES.find((s) => s.hook === o.hook)!;
  const context: Record<string, unknown> = { userId: 'Practitioner/sandbox-practitioner', patientId: o.patientId };
  if (o.hook !== 'patient-view') {
    const order = eyeExamOrder(o.patientId);
    context.draftOrders = draftOrders(order);
    if (o.hook === 'order-select') context.selections = [`ServiceRequest/${String(order.id)}`];
  }
  let prefetch: Record<string, unknown> | undefined;
  if (o.prefetch) {
    prefetch = {};
    for (const [key, template] of Object.entries(service.prefetch ?? {})) {
      prefetch[key] = await fhirJson(`${o.fhirBaseUrl}/${template.replaceAll('{{context.patientId}}', o.patientId)}`, o.token.access_token);
    }
  }
  const t = o.token;
  return {
    serviceUrl: `${o.serviceBaseUrl}/cds-services/${service.id}`,
    hook: o.hook,
    context,
    fhirServer: o.withToken ? o.fhirBaseUrl : undefined,
    fhirAuthorization: o.withToken ? { access_token: t.access_token, token_type: 'Bearer', expires_in: t.expires_in, scope: t.scope, subject: SANDBOX_CLIENT_IDS.backend } : undefined,
    prefetch,
  };
}
