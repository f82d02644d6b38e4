/**
 * The sandbox's login + consent step. SANDBOX ONLY: there is no human login. The configured sandbox user
 * (a Practitioner) is signed in and every scope the client's registration covers is granted at once,
 * without a page. The launch context is resolved here:
 *  - `launch=<id>` (EHR launch) -> the context registered with createLaunch (one-time; unknown ids refused);
 *  - `launch/patient` scope without a launch (standalone) -> the sandbox's default patient.
 * A SMART `aud` parameter other than the FHIR base URL is refused.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { Logger } from '../../log.js';
import { allowedScopes } from '../smart-scopes.js';
import type { GrantContext, LaunchContext, LaunchStore } from './launch-contexts.js';
import { OIDC_SCOPES } from './provider-config.js';

export interface InteractionDeps {
  provider: Provider;
  fhirBaseUrl: string;
  registeredScope: (clientId: string) => string | undefined;
  launches: LaunchStore;
  grantContexts: Map<string, GrantContext>;
  sandboxUser: string;
  defaultPatient?: string;
  smartStyleUrl?: string;
  log: Logger;
}

export async function handleInteraction(deps: InteractionDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const details = await deps.provider.interactionDetails(req, res);
  const { params } = details;
  const clientId = params.client_id ?? '';
  const refuse = (error: string, description: string): Promise<void> => {
    deps.log.warn({ error, description }, 'sandbox auth: authorization refused');
    return deps.provider.interactionFinished(req, res, { error, error_description: description }, { mergeWithLastSubmission: false });
  };

  if (params.aud !== undefined && params.aud.replace(/\/$/, '') !== deps.fhirBaseUrl) {
    return refuse('invalid_request', 'aud must be the FHIR server base URL');
  }
  const requested = (params.scope ?? '').split(' ').filter(Boolean);
  let launch: LaunchContext = {};
  if (params.launch !== undefined) {
    const found = deps.launches.take(params.launch);
    if (!found) return refuse('invalid_request', 'unknown, used or expired launch');
    launch = found;
  } else if (requested.includes('launch/patient')) {
    if (!deps.defaultPatient) return refuse('invalid_request', 'the sandbox has no default patient for a standalone launch');
    launch = { patient: deps.defaultPatient };
  }

  const granted = allowedScopes(params.scope, deps.registeredScope(clientId) ?? '');
  const oidcScopes = granted.filter((s) => OIDC_SCOPES.includes(s));
  const resourceScopes = granted.filter((s) => !OIDC_SCOPES.includes(s));
  const fhirUser = launch.fhirUser ?? deps.sandboxUser;

  const grant = new deps.provider.Grant({ accountId: fhirUser, clientId });
  if (oidcScopes.length > 0) grant.addOIDCScope(oidcScopes.join(' '));
  if (oidcScopes.includes('fhirUser')) grant.addOIDCClaims(['fhirUser']);
  if (resourceScopes.length > 0) grant.addResourceScope(deps.fhirBaseUrl, resourceScopes.join(' '));
  const grantId = await grant.save();
  deps.grantContexts.set(grantId, {
    ...launch,
    fhirUser,
    needPatientBanner: params.launch === undefined, // an EHR shows its own banner; a standalone app must
    ...(deps.smartStyleUrl ? { smartStyleUrl: deps.smartStyleUrl } : {}),
  });
  await deps.provider.interactionFinished(
    req,
    res,
    { login: { accountId: fhirUser }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}
