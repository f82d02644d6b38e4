/**
 * Search-request rules the memory store does not apply on its own: unknown search parameters are an
 * error (400) rather than silently ignored, page sizes are bounded, and searchset bundles get
 * self/first/previous/next links built from `_count` and `_offset`.
 */
import '../../platform/websocket-shim.js';
import { badRequest, getSearchParameter, OperationOutcomeError } from '@medplum/core';
import type { BundleLink } from '@medplum/fhirtypes';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

/** Parameters every type accepts, handled by the router or by this server. */
const RESULT_PARAMS = new Set([
  '_count', '_offset', '_sort', '_include', '_revinclude', '_total', '_summary', '_elements', '_format', '_pretty',
]);

/** Returns the search parameter names in `query` that `resourceType` does not define. */
export function unknownSearchParams(resourceType: string, names: Iterable<string>): string[] {
  const unknown: string[] = [];
  for (const name of names) {
    if (RESULT_PARAMS.has(name)) continue;
    // `code:modifier`, `subject:Patient.name` (chain) -> the base parameter name
    const base = name.split(/[:.]/, 1)[0] ?? '';
    if (base === '' || base.startsWith('_has') || !getSearchParameter(resourceType, base)) unknown.push(name);
  }
  return unknown;
}

/** Throws a 400 OperationOutcome naming every unknown search parameter. */
export function assertKnownSearchParams(resourceType: string, names: Iterable<string>): void {
  const unknown = unknownSearchParams(resourceType, names);
  if (unknown.length > 0) {
    throw new OperationOutcomeError(
      badRequest(`Unknown search parameter${unknown.length > 1 ? 's' : ''} for ${resourceType}: ${unknown.join(', ')}`),
    );
  }
}

export interface PageWindow {
  count: number;
  offset: number;
}

/** Reads `_count`/`_offset` (defaults and bounds applied); throws 400 on values that are not non-negative integers. */
export function pageWindow(query: URLSearchParams): PageWindow {
  return {
    count: Math.min(readNonNegativeInt(query, '_count') ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
    offset: readNonNegativeInt(query, '_offset') ?? 0,
  };
}

function readNonNegativeInt(query: URLSearchParams, name: string): number | undefined {
  const values = query.getAll(name);
  if (values.length === 0) return undefined;
  const raw = values[values.length - 1] ?? '';
  if (!/^\d{1,9}$/.test(raw)) throw new OperationOutcomeError(badRequest(`${name} must be a non-negative integer`));
  return Number(raw);
}

/**
 * Links for one page of a searchset: `self`, `first`, `previous` (when not on the first page) and `next`
 * (when more matches remain). `typeUrl` is the absolute search URL without a query (`{base}/Observation`).
 */
export function pagingLinks(typeUrl: string, query: URLSearchParams, window: PageWindow, total: number): BundleLink[] {
  const pageUrl = (offset: number): string => {
    const q = new URLSearchParams(query);
    q.delete('_offset');
    q.set('_count', String(window.count));
    if (offset > 0) q.set('_offset', String(offset));
    return `${typeUrl}?${q.toString()}`;
  };
  const links: BundleLink[] = [
    { relation: 'self', url: pageUrl(window.offset) },
    { relation: 'first', url: pageUrl(0) },
  ];
  if (window.offset > 0 && window.count > 0) {
    links.push({ relation: 'previous', url: pageUrl(Math.max(0, window.offset - window.count)) });
  }
  if (window.count > 0 && window.offset + window.count < total) {
    links.push({ relation: 'next', url: pageUrl(window.offset + window.count) });
  }
  return links;
}
