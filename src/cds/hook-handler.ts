/**
 * The hook use-case. Until the model runtime and the evidence pipeline are wired in, it answers
 * honestly: no cards (CDS Hooks: "no guidance" is an empty list) — it never invents findings.
 */
import type { Logger } from '../log.js';
import type { HookHandler } from './types.js';

export interface HookHandlerDeps {
  log: Logger;
  /** The FHIR server allowlist: a hook's fhirServer outside it is refused before any request. */
  isFhirServerAllowed: (url: string) => boolean;
}

export function createHookHandler(deps: HookHandlerDeps): HookHandler {
  return async (request, service) => {
    if (request.fhirServer !== undefined && !deps.isFhirServerAllowed(request.fhirServer)) {
      deps.log.warn({ service: service.id }, 'hook call names a FHIR server that is not on the allowlist; no data fetched');
      return { cards: [] };
    }
    return { cards: [] };
  };
}
