/**
 * The local EHR sandbox's FHIR R4 server: @medplum/fhir-router over an in-memory store (SandboxRepository:
 * validation on write, transaction rollback, 410 after delete) served by node:http on loopback at
 * `http://host:port/fhir/R4`. Requests need a bearer access token from the sandbox authorization server,
 * and the token's SMART scopes are enforced per interaction (see fhir/access-repository.ts).
 *
 * For development and tests only: data lives in memory and is lost on close.
 */
import '../platform/websocket-shim.js';
import { FhirRouter, type MemoryRepository } from '@medplum/fhir-router';
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { getStatus, isOk } from '@medplum/core';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { authEndpoint, buildSmartConfiguration } from './auth/smart-configuration.js';
import { createBearerVerifier } from './fhir/bearer-auth.js';
import { WriteLock } from './fhir/http-io.js';
import { listen } from './fhir/listen.js';
import { createFhirRequestHandler, type FhirAuthBinding } from './fhir/request-handler.js';
import { SandboxRepository } from './fhir/sandbox-repository.js';
import type { SandboxEhrProfile } from './fhir/ehr-behaviour.js';

export const FHIR_BASE_PATH = '/fhir/R4';

export interface FhirServerOptions {
  /** Loopback address to bind; default 127.0.0.1. */
  host?: string;
  /** 0 (default) = an ephemeral port. */
  port?: number;
  /** The sandbox authorization server's issuer URL. */
  authIssuer: string;
  /** Default `${authIssuer}/jwks`. */
  jwksUrl?: string;
  /** The `aud` access tokens must carry; default the FHIR base URL. */
  audience?: string;
  log: Logger;
  /** Default true. false serves every request without a token (unit tests of FHIR behaviour only). */
  requireAuth?: boolean;
  /** Which EHR's write refusals to imitate (fhir/ehr-behaviour.ts); default `standard`. */
  ehrProfile?: SandboxEhrProfile;
}

export interface FhirSandbox {
  /** e.g. http://127.0.0.1:PORT/fhir/R4 */
  baseUrl: string;
  repo: MemoryRepository;
  /** The EHR whose write refusals the server imitates now (tests switch it between cases). */
  ehrProfile: SandboxEhrProfile;
  /** Loads a transaction/batch bundle (or a collection, written as one transaction) without auth checks. */
  loadBundle(bundle: Bundle): Promise<void>;
  close(): Promise<void>;
}

export interface FhirAuthSettings {
  authIssuer: string;
  jwksUrl?: string;
  audience?: string;
}

/** A started FHIR server whose authorization server may be connected after it listens. */
export interface OpenFhirServer {
  sandbox: FhirSandbox;
  connectAuth(settings: FhirAuthSettings): void;
}

export async function startFhirServer(opts: FhirServerOptions): Promise<FhirSandbox> {
  const open = await openFhirServer(opts);
  open.connectAuth(opts);
  return open.sandbox;
}

/**
 * Starts the FHIR server before its authorization server is known (both pick ephemeral ports and each
 * needs the other's URL). Authenticated requests answer 503 until `connectAuth` is called.
 */
export async function openFhirServer(opts: Omit<FhirServerOptions, 'authIssuer' | 'jwksUrl' | 'audience'>): Promise<OpenFhirServer> {
  const host = opts.host ?? '127.0.0.1';
  const store = new SandboxRepository();
  const router = new FhirRouter();
  const lock = new WriteLock();
  const listening = await listen(host, opts.port ?? 0);
  const baseUrl = `${listening.origin}${FHIR_BASE_PATH}`;
  let binding: FhirAuthBinding | undefined;

  listening.setHandler(
    createFhirRequestHandler({
      baseUrl,
      basePath: FHIR_BASE_PATH,
      store,
      router,
      lock,
      log: opts.log,
      requireAuth: opts.requireAuth ?? true,
      auth: () => binding,
      ehrProfile: () => sandbox.ehrProfile,
    }),
  );
  opts.log.info({ baseUrl, requireAuth: opts.requireAuth ?? true }, 'sandbox FHIR server listening');

  const sandbox: FhirSandbox = {
    baseUrl,
    repo: store,
    ehrProfile: opts.ehrProfile ?? 'standard',
    loadBundle: (bundle) => lock.run(() => loadBundle(router, store, bundle)),
    close: () => listening.close(),
  };
  return {
    sandbox,
    connectAuth(settings) {
      const issuer = settings.authIssuer.replace(/\/$/, '');
      binding = {
        verify: createBearerVerifier({
          issuer,
          jwksUrl: settings.jwksUrl ?? authEndpoint(issuer, 'jwks'),
          audience: settings.audience ?? baseUrl,
        }),
        oauth: {
          authorize: authEndpoint(issuer, 'authorization'),
          token: authEndpoint(issuer, 'token'),
          revoke: authEndpoint(issuer, 'revocation'),
          introspect: authEndpoint(issuer, 'introspection'),
        },
        smartConfiguration: buildSmartConfiguration(issuer),
      };
    },
  };
}

async function loadBundle(router: FhirRouter, store: SandboxRepository, bundle: Bundle): Promise<void> {
  if (bundle?.resourceType !== 'Bundle') throw new AppError('bad_request', 'loadBundle: not a FHIR Bundle');
  const toSend: Bundle =
    bundle.type === 'transaction' || bundle.type === 'batch'
      ? bundle
      : { resourceType: 'Bundle', type: 'transaction', entry: (bundle.entry ?? []).map(asTransactionEntry) };
  const [outcome, result] = await router.handleRequest(
    { method: 'POST', url: '/', pathname: '', body: toSend, params: {}, query: {}, config: { transactions: true } },
    store,
  );
  const failed = (result as Bundle | undefined)?.entry?.filter((e) => !/^2\d\d/.test(e.response?.status ?? ''));
  if (!isOk(outcome) || (failed && failed.length > 0)) {
    const text = outcome.issue?.[0]?.details?.text ?? failed?.[0]?.response?.outcome?.issue?.[0]?.details?.text;
    throw new AppError('bad_request', `loadBundle: bundle rejected (${getStatus(outcome)}): ${text ?? 'entry failed'}`, {
      cause: outcome,
    });
  }
}

function asTransactionEntry(entry: BundleEntry): BundleEntry {
  const resource = entry.resource;
  if (!resource) throw new AppError('bad_request', 'loadBundle: a collection entry has no resource');
  return resource.id
    ? { resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } }
    : { ...(entry.fullUrl ? { fullUrl: entry.fullUrl } : {}), resource, request: { method: 'POST', url: resource.resourceType } };
}
