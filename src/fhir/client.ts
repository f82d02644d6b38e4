/**
 * The FHIR port: what the evidence pipeline needs from any R4 server. HttpFhirClient implements it over
 * the guarded fetch; tests may implement it in memory. Resource types come from @types/fhir (R4).
 */
import type { Attachment, Bundle, OperationOutcome, Resource } from 'fhir/r4.js';

export type SearchParams = Readonly<Record<string, string | readonly string[]>>;

export interface RequestOptions {
  readonly signal?: AbortSignal;
}

export interface SearchOptions extends RequestOptions {
  /** Stop following link[next] after this many pages (default 5). */
  readonly maxPages?: number;
  /** Stop collecting after this many resources (default 500). */
  readonly maxResources?: number;
}

export interface SearchResult<T extends Resource = Resource> {
  /** Matches and includes, in server order (OperationOutcome entries are moved to `outcomes`). */
  readonly resources: readonly T[];
  /** OperationOutcomes found in the Bundle (search.mode = outcome, or as plain entries). */
  readonly outcomes: readonly OperationOutcome[];
  /** True when a page/resource cap stopped paging before the server's last page. */
  readonly truncated: boolean;
  readonly pages: number;
}

export interface BinaryOptions extends RequestOptions {
  readonly maxBytes?: number;
}

export interface BinaryContent {
  readonly contentType: string;
  readonly data: Uint8Array;
}

export interface FhirClient {
  /** Absolute base URL without trailing slash. */
  readonly baseUrl: string;
  read<T extends Resource = Resource>(resourceType: string, id: string, opts?: RequestOptions): Promise<T>;
  search<T extends Resource = Resource>(resourceType: string, params?: SearchParams, opts?: SearchOptions): Promise<SearchResult<T>>;
  /** Continues a paginated search from a Bundle's link[next] URL (must be on this server), e.g. for a prefetched first page. */
  continueSearch<T extends Resource = Resource>(nextUrl: string, opts?: SearchOptions): Promise<SearchResult<T>>;
  /** Bytes of a Binary: `Binary/x`, a relative or absolute URL on this server. */
  readBinary(ref: string, opts?: BinaryOptions): Promise<BinaryContent>;
  /** Bytes of an Attachment: inline `data`, or `url` (FHIR-relative, on this server, or another allowlisted origin without the token). */
  readAttachment(attachment: Attachment, opts?: BinaryOptions): Promise<BinaryContent>;
}

export interface WriteOptions extends RequestOptions {
  /**
   * Retry 429/503 answers (default false). Only for writes the server deduplicates: a conditional create,
   * an update with If-Match, a transaction of conditional entries.
   */
  readonly retry?: boolean;
}

export interface FhirWriteResult<T extends Resource = Resource> {
  readonly status: number;
  /** The server's representation (we send `Prefer: return=representation`; a server may still send none). */
  readonly resource?: T;
  /** Location (or Content-Location) header, as the server sent it: absolute or relative. */
  readonly location?: string;
  readonly etag?: string;
}

/**
 * Writes, for the write-back profiles (src/writeback). Refusals throw FhirError with the HTTP status and the
 * OperationOutcome's issue codes; the issue text (which can echo PHI) is only in `FhirError.outcomeText`,
 * for showing to the clinician, never logged.
 */
export interface FhirWriter {
  readonly baseUrl: string;
  /** POST a transaction (or batch) Bundle to the base; the response Bundle. */
  transaction(bundle: Bundle, opts?: WriteOptions): Promise<FhirWriteResult<Bundle>>;
  /** POST `[base]/[type]`; with `ifNoneExist` (a query such as `identifier=sys|val`) a conditional create. */
  create<T extends Resource>(resource: T, opts?: WriteOptions & { ifNoneExist?: string }): Promise<FhirWriteResult<T>>;
  /** PUT `[base]/[type]/[id]`; with `ifMatch` (an ETag such as `W/"3"`) refused with 412 when the version moved on. */
  update<T extends Resource>(resource: T, opts?: WriteOptions & { ifMatch?: string }): Promise<FhirWriteResult<T>>;
}

/** Splits a relative query like `Observation?patient=1&code=a,b` into a type and params. */
export function parseRelativeQuery(query: string): { resourceType: string; params: Record<string, string[]> } {
  const q = query.startsWith('/') ? query.slice(1) : query;
  const at = q.indexOf('?');
  const resourceType = at < 0 ? q : q.slice(0, at);
  const params: Record<string, string[]> = {};
  if (at >= 0) {
    for (const [k, v] of new URLSearchParams(q.slice(at + 1))) (params[k] ??= []).push(v);
  }
  return { resourceType, params };
}
