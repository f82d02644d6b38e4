/**
 * The sandbox FHIR server's HTTP handling: node:http request -> auth -> @medplum/fhir-router -> response.
 * Adds what the router leaves to the transport: CapabilityStatement, 400 on unknown search parameters,
 * bounded paging with links, bearer-token checks (401) and scope checks (403, via AccessRepository),
 * raw Binary in and out, `application/fhir+json` everywhere, serialised writes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import '../../platform/websocket-shim.js';
import { getStatus, isResourceType, normalizeOperationOutcome, notFound, OperationOutcomeError } from '@medplum/core';
import type { FhirRepository, FhirRequest, FhirRouter, HttpMethod } from '@medplum/fhir-router';
import type { Binary, Bundle, Resource } from '@medplum/fhirtypes';
import type { Logger } from '../../log.js';
import { AccessRepository } from './access-repository.js';
import { BearerError, type AccessContext, type BearerVerifier } from './bearer-auth.js';
import { buildCapabilityStatement, type OAuthEndpoints } from './capability-statement.js';
import { mediaType, outcomeOf, parseJsonBody, readBody, sendOutcome, sendRaw, sendResource, type WriteLock } from './http-io.js';
import type { SandboxRepository } from './sandbox-repository.js';
import { ehrRefusal, type SandboxEhrProfile } from './ehr-behaviour.js';
import { assertKnownSearchParams, pageWindow, pagingLinks, type PageWindow } from './search-params.js';

export interface FhirAuthBinding {
  verify: BearerVerifier;
  oauth: OAuthEndpoints;
  /** The authorization server's SMART configuration, also served at `[base]/.well-known/smart-configuration`. */
  smartConfiguration: Record<string, unknown>;
}

export interface FhirHandlerDeps {
  baseUrl: string;
  basePath: string;
  store: SandboxRepository;
  router: FhirRouter;
  lock: WriteLock;
  log: Logger;
  requireAuth: boolean;
  /** Undefined until the authorization server is known; requests needing auth then get 503. */
  auth: () => FhirAuthBinding | undefined;
  /** Which EHR's write refusals to imitate (ehr-behaviour.ts); default `standard`. */
  ehrProfile?: () => SandboxEhrProfile;
}

const REALM = 'volmo-sandbox-fhir';
const JSON_TYPES = new Set(['application/fhir+json', 'application/json', 'application/json-patch+json', '']);

export function createFhirRequestHandler(deps: FhirHandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = Date.now();
    handle(deps, req, res)
      .catch((err: unknown) => {
        const outcome = normalizeOperationOutcome(err);
        const status = getStatus(outcome);
        if (status >= 500) deps.log.error({ err }, 'sandbox fhir: request failed');
        if (!res.headersSent) sendOutcome(res, outcome, status);
        else res.destroy();
      })
      .finally(() => {
        deps.log.debug({ method: req.method, status: res.statusCode, ms: Date.now() - started }, 'sandbox fhir request');
      });
  };
}

async function handle(deps: FhirHandlerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase() as HttpMethod;
  const url = new URL(req.url ?? '/', deps.baseUrl);
  if (url.pathname !== deps.basePath && !url.pathname.startsWith(`${deps.basePath}/`)) {
    return sendOutcome(res, notFound);
  }
  const rel = url.pathname.slice(deps.basePath.length) || '/';
  const binding = deps.auth();

  if (method === 'GET' && rel === '/metadata') {
    return sendResource(res, 200, buildCapabilityStatement(deps.baseUrl, binding?.oauth));
  }
  if (method === 'GET' && rel === '/.well-known/smart-configuration') {
    if (!binding) return sendOutcome(res, notFound);
    const text = JSON.stringify(binding.smartConfiguration);
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    return void res.end(text);
  }

  let access: AccessContext | undefined;
  if (deps.requireAuth) {
    if (!binding) {
      return sendOutcome(res, outcomeOf('unauthorized', 'the authorization server is not connected yet'), 503);
    }
    try {
      access = await binding.verify(req.headers.authorization);
    } catch (err) {
      if (!(err instanceof BearerError)) throw err;
      return sendOutcome(res, outcomeOf('unauthorized', `Unauthorized: ${err.message}`), 401, {
        'www-authenticate': err.challenge(REALM),
      });
    }
  }

  const route = deps.router.find(method, rel);
  if (!route) return sendOutcome(res, notFound);
  const resourceType = route.params.resourceType;
  if (resourceType !== undefined && !resourceType.startsWith('$') && !isResourceType(resourceType)) {
    return sendOutcome(res, { ...notFound, issue: [{ severity: 'error', code: 'not-found', details: { text: `Unknown resource type ${resourceType}` } }] });
  }
  const interaction = route.data?.interaction;
  const body = ['POST', 'PUT', 'PATCH'].includes(method) ? await readRequestBody(req, resourceType, rel) : undefined;

  const refusal = ehrRefusal(deps.ehrProfile?.() ?? 'standard', method, rel, body);
  if (refusal) {
    return sendOutcome(res, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: refusal.status === 403 ? 'forbidden' : 'business-rule', details: { text: refusal.text } }] }, refusal.status);
  }
  // Epic and Oracle Health do not deduplicate creates: the header is ignored as they ignore it.
  const headers = deps.ehrProfile && deps.ehrProfile() !== 'standard' ? { ...req.headers, 'if-none-exist': undefined } : req.headers;

  const query = new URLSearchParams(url.search);
  let window: PageWindow | undefined;
  if (interaction === 'search-type' && resourceType) {
    const names = method === 'GET' ? [...query.keys()] : Object.keys((body as Record<string, unknown>) ?? {});
    assertKnownSearchParams(resourceType, names);
    if (method === 'GET') {
      window = pageWindow(query);
      query.set('_count', String(window.count));
      query.set('_offset', String(window.offset));
    }
  }

  const repo: FhirRepository = access ? new AccessRepository(deps.store, access) : deps.store;
  const fhirReq: FhirRequest = {
    method,
    url: `${rel}${[...query.keys()].length > 0 ? `?${query.toString()}` : ''}`,
    pathname: '',
    body,
    params: {},
    query: {},
    headers,
    config: { transactions: true },
  };
  const exec = (): ReturnType<FhirRouter['handleRequest']> => deps.router.handleRequest(fhirReq, repo);
  const [outcome, resource] = method === 'GET' ? await exec() : await deps.lock.run(exec);
  const status = getStatus(outcome);
  if (!resource) return sendOutcome(res, outcome, status);

  if (resource.resourceType === 'Bundle' && resource.type === 'searchset' && resourceType) {
    decorateSearchset(deps.baseUrl, resourceType, resource, query, window);
  }
  if (resource.resourceType === 'Binary' && wantsRawBinary(req.headers.accept, resource)) {
    return sendRaw(res, status, resource.contentType ?? 'application/octet-stream', Buffer.from(resource.data ?? '', 'base64'));
  }
  sendResource(res, status, resource, versionHeaders(deps.baseUrl, resource, status));
}

async function readRequestBody(req: IncomingMessage, resourceType: string | undefined, rel: string): Promise<unknown> {
  const raw = await readBody(req);
  const type = mediaType(req.headers['content-type']);
  if (rel.endsWith('/_search') && (type === 'application/x-www-form-urlencoded' || type === '')) {
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  }
  if (JSON_TYPES.has(type)) return parseJsonBody(raw);
  if (resourceType === 'Binary') {
    // Raw upload: the body becomes a Binary resource with the request's content type.
    const id = rel.split('/').filter(Boolean)[1];
    const binary: Binary = { resourceType: 'Binary', contentType: type, data: raw.toString('base64'), ...(id ? { id } : {}) };
    return binary;
  }
  throw new OperationOutcomeError(outcomeOf('unsupported-media', `Unsupported Content-Type ${type}; use application/fhir+json`));
}

function decorateSearchset(baseUrl: string, type: string, bundle: Bundle, query: URLSearchParams, window?: PageWindow): void {
  for (const entry of bundle.entry ?? []) {
    if (entry.resource?.id) entry.fullUrl = `${baseUrl}/${entry.resource.resourceType}/${entry.resource.id}`;
  }
  if (window) bundle.link = pagingLinks(`${baseUrl}/${type}`, query, window, bundle.total ?? 0);
}

function wantsRawBinary(accept: string | undefined, binary: Binary): boolean {
  if (!accept || !binary.contentType) return false;
  const wanted = accept.split(',').map((a) => mediaType(a));
  if (wanted.some((w) => w.includes('json'))) return false;
  const [major] = binary.contentType.split('/');
  return wanted.some((w) => w === binary.contentType || w === `${major}/*`);
}

function versionHeaders(baseUrl: string, resource: Resource, status: number): Record<string, string> {
  const headers: Record<string, string> = {};
  const vid = resource.meta?.versionId;
  if (vid) headers.etag = `W/"${vid}"`;
  if (resource.meta?.lastUpdated) headers['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  if (status === 201 && resource.id) {
    headers.location = `${baseUrl}/${resource.resourceType}/${resource.id}${vid ? `/_history/${vid}` : ''}`;
  }
  return headers;
}
