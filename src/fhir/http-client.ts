/**
 * FhirClient over the guarded fetch: bearer token from a TokenSource, Accept application/fhir+json,
 * typed errors for OperationOutcomes, HTML pages, truncated or non-JSON bodies, and paging via
 * link[next] that never leaves the server's origin.
 */
import type { Attachment, Binary, Bundle, OperationOutcome, Resource } from 'fhir/r4.js';
import type { Logger } from '../log.js';
import { describeOrigin } from '../net/allowlist.js';
import type { GuardedFetch, GuardedResponse } from '../net/guarded-fetch.js';
import type { BinaryContent, BinaryOptions, FhirClient, FhirWriteResult, FhirWriter, RequestOptions, SearchOptions, SearchParams, SearchResult, WriteOptions } from './client.js';
import { FhirError, httpStatusError, isOperationOutcome } from './fhir-error.js';
import type { TokenSource } from './token-source.js';

export interface HttpFhirClientOptions {
  readonly baseUrl: string;
  readonly fetch: GuardedFetch;
  readonly tokens: TokenSource;
  readonly logger?: Logger;
  /** Per-request JSON size limit (default 8 MiB); binaries use their own limit. */
  readonly maxJsonBytes?: number;
  readonly maxBinaryBytes?: number;
  readonly timeoutMs?: number;
}

const FHIR_JSON = 'application/fhir+json';
const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;
const TYPE_RE = /^[A-Z][A-Za-z]{1,63}$/;

export class HttpFhirClient implements FhirClient, FhirWriter {
  readonly baseUrl: string;
  private readonly origin: string;
  private readonly opts: HttpFhirClientOptions;

  constructor(opts: HttpFhirClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.origin = describeOrigin(this.baseUrl);
    this.opts = opts;
  }

  async read<T extends Resource = Resource>(resourceType: string, id: string, opts: RequestOptions = {}): Promise<T> {
    checkType(resourceType);
    if (!ID_RE.test(id)) throw new FhirError('refused_scheme', this.origin, 'invalid FHIR id', { code: 'bad_request' });
    const body = await this.getJson(`${this.baseUrl}/${resourceType}/${id}`, opts.signal);
    if (body.resourceType !== resourceType) {
      throw new FhirError('bad_body', this.origin, `expected ${resourceType}, got ${String(body.resourceType)}`);
    }
    return body as T;
  }

  async search<T extends Resource = Resource>(resourceType: string, params: SearchParams = {}, opts: SearchOptions = {}): Promise<SearchResult<T>> {
    checkType(resourceType);
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const one of typeof v === 'string' ? [v] : v) qs.append(k, one);
    return this.collect<T>(`${this.baseUrl}/${resourceType}${qs.size > 0 ? `?${qs}` : ''}`, opts);
  }

  async continueSearch<T extends Resource = Resource>(nextUrl: string, opts: SearchOptions = {}): Promise<SearchResult<T>> {
    return this.collect<T>(this.sameServer(nextUrl), opts);
  }

  private async collect<T extends Resource>(first: string, opts: SearchOptions): Promise<SearchResult<T>> {
    const maxPages = opts.maxPages ?? 5;
    const maxResources = opts.maxResources ?? 500;
    let url: string | undefined = first;
    const resources: T[] = [];
    const outcomes: OperationOutcome[] = [];
    let pages = 0;
    while (url !== undefined) {
      const body = await this.getJson(url, opts.signal);
      if (isOperationOutcome(body)) throw httpStatusError(this.origin, 200, body);
      if (body.resourceType !== 'Bundle') throw new FhirError('bad_body', this.origin, `expected a Bundle, got ${String(body.resourceType)}`);
      const bundle = body as Bundle;
      pages++;
      // The server's Bundle is untrusted: entries and links that are not objects are passed over.
      for (const e of Array.isArray(bundle.entry) ? bundle.entry : []) {
        const r: unknown = e?.resource;
        if (!r || typeof r !== 'object' || typeof (r as Resource).resourceType !== 'string') continue;
        if (isOperationOutcome(r) || e.search?.mode === 'outcome') outcomes.push(r as OperationOutcome);
        else if (resources.length < maxResources) resources.push(r as T);
      }
      const link = Array.isArray(bundle.link) ? bundle.link.find((l) => l?.relation === 'next')?.url : undefined;
      const next = typeof link === 'string' ? link : undefined;
      if (next === undefined) return { resources, outcomes, truncated: false, pages };
      if (pages >= maxPages || resources.length >= maxResources) return { resources, outcomes, truncated: true, pages };
      url = this.sameServer(next);
    }
    return { resources, outcomes, truncated: false, pages };
  }

  async readBinary(ref: string, opts: BinaryOptions = {}): Promise<BinaryContent> {
    const url = this.sameServer(ref.startsWith('http:') || ref.startsWith('https:') ? ref : `${this.baseUrl}/${ref.replace(/^\//, '')}`);
    const res = await this.send(url, `${FHIR_JSON}, */*;q=0.5`, opts.signal, opts.maxBytes ?? this.opts.maxBinaryBytes ?? 32 * 1024 * 1024, true);
    const type = res.header('content-type') ?? 'application/octet-stream';
    if (/^application\/(fhir\+)?json/i.test(type)) {
      const body = this.parseJson(res);
      if (body.resourceType !== 'Binary') throw new FhirError('bad_body', this.origin, `expected a Binary, got ${String(body.resourceType)}`);
      const bin = body as Binary;
      return { contentType: bin.contentType ?? 'application/octet-stream', data: decodeBase64(bin.data ?? '', this.origin) };
    }
    return { contentType: type.split(';')[0].trim(), data: new Uint8Array(res.body) };
  }

  async readAttachment(att: Attachment, opts: BinaryOptions = {}): Promise<BinaryContent> {
    const limit = opts.maxBytes ?? this.opts.maxBinaryBytes ?? 32 * 1024 * 1024;
    const contentType = att.contentType ?? 'application/octet-stream';
    if (att.size !== undefined && att.size > limit) throw new FhirError('too_large', this.origin, `attachment declares ${att.size} bytes, limit ${limit}`);
    if (att.data !== undefined) {
      if (att.data.length > Math.ceil(limit / 3) * 4 + 4) throw new FhirError('too_large', this.origin, `inline attachment over ${limit} bytes`);
      return { contentType, data: decodeBase64(att.data, this.origin) };
    }
    if (att.url === undefined) throw new FhirError('bad_body', this.origin, 'attachment has neither data nor url', { code: 'not_found' });
    const abs = new URL(att.url, `${this.baseUrl}/`).href;
    if (abs.startsWith(`${this.baseUrl}/`)) {
      const res = await this.readBinary(abs, { ...opts, maxBytes: limit });
      return { contentType: att.contentType ?? res.contentType, data: res.data };
    }
    // Another allowlisted origin (e.g. a document store): fetched without our FHIR token.
    const res = await this.opts.fetch(abs, { signal: opts.signal, maxBytes: limit, timeoutMs: this.opts.timeoutMs, headers: { accept: contentType } });
    if (!res.ok) throw httpStatusError(describeOrigin(abs), res.status, undefined);
    return { contentType: att.contentType ?? res.header('content-type') ?? contentType, data: new Uint8Array(res.body) };
  }

  /** Only URLs under our base URL may receive our token (next links, Binary URLs). */
  private sameServer(url: string): string {
    const abs = new URL(url, `${this.baseUrl}/`).href;
    if (abs !== this.baseUrl && !abs.startsWith(`${this.baseUrl}/`) && !abs.startsWith(`${this.baseUrl}?`)) {
      throw new FhirError('refused_allowlist', this.origin, 'link points outside the FHIR server base URL', { code: 'upstream_refused' });
    }
    return abs;
  }

  private async getJson(url: string, signal: AbortSignal | undefined): Promise<Resource> {
    const res = await this.send(url, FHIR_JSON, signal, this.opts.maxJsonBytes ?? 8 * 1024 * 1024, false);
    return this.parseJson(res);
  }

  private async send(
    url: string, accept: string, signal: AbortSignal | undefined, maxBytes: number, binary: boolean,
    write?: { method: 'POST' | 'PUT'; body: string; headers: Record<string, string>; retry: boolean },
  ): Promise<GuardedResponse> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.opts.tokens.getToken(signal);
      const headers: Record<string, string> = { accept, ...(write ? { 'content-type': FHIR_JSON, ...write.headers } : {}) };
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      const res = await this.opts.fetch(url, {
        headers, signal, maxBytes, timeoutMs: this.opts.timeoutMs,
        ...(write ? { method: write.method, body: write.body, retry: write.retry } : {}),
      });
      if (res.status === 401 && attempt === 0 && this.opts.tokens.invalidate?.()) continue;
      if (res.ok) return res;
      let outcome: OperationOutcome | undefined;
      if (!binary || /json/i.test(res.header('content-type') ?? '')) {
        try {
          const parsed: unknown = JSON.parse(res.text());
          if (isOperationOutcome(parsed)) outcome = parsed;
        } catch {
          // an error page; the status says enough
        }
      }
      this.opts.logger?.warn({ origin: this.origin, status: res.status, ...(write ? { method: write.method } : {}) }, 'FHIR request failed');
      throw httpStatusError(this.origin, res.status, outcome);
    }
  }

  async transaction(bundle: Bundle, opts: WriteOptions = {}): Promise<FhirWriteResult<Bundle>> {
    if (bundle.resourceType !== 'Bundle' || (bundle.type !== 'transaction' && bundle.type !== 'batch')) {
      throw new FhirError('refused_scheme', this.origin, 'not a transaction or batch Bundle', { code: 'bad_request' });
    }
    const res = await this.write('POST', this.baseUrl, bundle, {}, opts);
    const body = this.parseJson(res);
    if (body.resourceType !== 'Bundle') throw new FhirError('bad_body', this.origin, `expected a Bundle, got ${String(body.resourceType)}`);
    return this.result(res, body as Bundle);
  }

  async create<T extends Resource>(resource: T, opts: WriteOptions & { ifNoneExist?: string } = {}): Promise<FhirWriteResult<T>> {
    checkType(resource.resourceType);
    const headers: Record<string, string> = opts.ifNoneExist !== undefined ? { 'if-none-exist': opts.ifNoneExist } : {};
    const res = await this.write('POST', `${this.baseUrl}/${resource.resourceType}`, resource, headers, opts);
    return this.result(res, this.optionalBody<T>(res, resource.resourceType));
  }

  async update<T extends Resource>(resource: T, opts: WriteOptions & { ifMatch?: string } = {}): Promise<FhirWriteResult<T>> {
    checkType(resource.resourceType);
    if (resource.id === undefined || !ID_RE.test(resource.id)) throw new FhirError('refused_scheme', this.origin, 'update needs a valid FHIR id', { code: 'bad_request' });
    const headers: Record<string, string> = opts.ifMatch !== undefined ? { 'if-match': opts.ifMatch } : {};
    const res = await this.write('PUT', `${this.baseUrl}/${resource.resourceType}/${resource.id}`, resource, headers, opts);
    return this.result(res, this.optionalBody<T>(res, resource.resourceType));
  }

  private write(method: 'POST' | 'PUT', url: string, body: Resource, headers: Record<string, string>, opts: WriteOptions): Promise<GuardedResponse> {
    const all = { prefer: 'return=representation', ...headers };
    // 429/503 retries only where the server itself deduplicates (conditional create, If-Match, transactions keyed by identifiers).
    return this.send(url, FHIR_JSON, opts.signal, this.opts.maxJsonBytes ?? 8 * 1024 * 1024, false, { method, body: JSON.stringify(body), headers: all, retry: opts.retry ?? false });
  }

  /** A write's body may be empty (Prefer ignored) or an OperationOutcome (return=OperationOutcome servers). */
  private optionalBody<T extends Resource>(res: GuardedResponse, resourceType: string): T | undefined {
    if (res.body.length === 0) return undefined;
    const body = this.parseJson(res);
    return body.resourceType === resourceType ? (body as T) : undefined;
  }

  private result<T extends Resource>(res: GuardedResponse, resource: T | undefined): FhirWriteResult<T> {
    const location = res.header('location') ?? res.header('content-location');
    const etag = res.header('etag');
    return { status: res.status, ...(resource ? { resource } : {}), ...(location ? { location } : {}), ...(etag ? { etag } : {}) };
  }

  private parseJson(res: GuardedResponse): Resource {
    const type = (res.header('content-type') ?? '').toLowerCase();
    const head = res.body.subarray(0, 64).toString('utf8').trimStart().toLowerCase();
    if (type.includes('html') || head.startsWith('<!doctype') || head.startsWith('<html')) {
      throw new FhirError('bad_body', this.origin, 'expected FHIR JSON, got an HTML page');
    }
    let body: unknown;
    try {
      body = JSON.parse(res.text());
    } catch {
      throw new FhirError('bad_body', this.origin, `expected FHIR JSON, got an unparsable or truncated body (${res.body.length} bytes)`);
    }
    if (typeof body !== 'object' || body === null || typeof (body as Resource).resourceType !== 'string') {
      throw new FhirError('bad_body', this.origin, 'expected a FHIR resource (no resourceType)');
    }
    return body as Resource;
  }
}

function checkType(resourceType: string): void {
  if (!TYPE_RE.test(resourceType)) throw new FhirError('refused_scheme', '(fhir)', 'invalid FHIR resource type', { code: 'bad_request' });
}

function decodeBase64(data: string, origin: string): Uint8Array {
  const clean = data.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new FhirError('bad_body', origin, 'attachment data is not base64');
  return new Uint8Array(Buffer.from(clean, 'base64'));
}
