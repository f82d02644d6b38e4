/**
 * The FHIR client for one CDS Hooks call: the hook's `fhirServer` is attacker-controlled input, so it must
 * be on the outbound allowlist, and the token is the call's own `fhirAuthorization` (never stored).
 */
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { GuardedFetch } from '../net/guarded-fetch.js';
import type { FhirClient } from './client.js';
import { HttpFhirClient } from './http-client.js';
import { anonymousTokenSource, fhirAuthorizationTokenSource, parseFhirAuthorization } from './token-source.js';

export interface HookFhirInput {
  readonly fhirServer?: string;
  readonly fhirAuthorization?: unknown;
}

export interface HookFhirDeps {
  readonly fetch: GuardedFetch;
  readonly logger?: Logger;
  /** Allow calls without fhirAuthorization (open sandbox servers). Default false. */
  readonly allowAnonymous?: boolean;
  readonly now?: () => number;
  readonly timeoutMs?: number;
}

/**
 * A FhirClient for the hook's server, or undefined when the call carries no usable FHIR access (then work
 * from prefetch alone). Throws `upstream_refused` for a fhirServer outside the allowlist.
 */
export function fhirClientForHook(input: HookFhirInput, deps: HookFhirDeps): FhirClient | undefined {
  if (input.fhirServer === undefined) return undefined;
  if (!deps.fetch.allows(input.fhirServer)) {
    throw new AppError('upstream_refused', 'the fhirServer of this hook call is not on the FHIR server allowlist', { expose: true, status: 403 });
  }
  if (input.fhirAuthorization === undefined && !deps.allowAnonymous) return undefined;
  const tokens = input.fhirAuthorization === undefined ? anonymousTokenSource : fhirAuthorizationTokenSource(parseFhirAuthorization(input.fhirAuthorization), deps.now);
  return new HttpFhirClient({ baseUrl: input.fhirServer, fetch: deps.fetch, tokens, logger: deps.logger, timeoutMs: deps.timeoutMs });
}
