/**
 * CDS Hooks prefetch with the spec's semantics (standards.md §1.3): key absent -> fetch it ourselves;
 * `null` -> ran, no data; OperationOutcome (or a Bundle carrying error outcomes, or junk such as an HTML
 * string) -> a problem, then fetch it ourselves when we can. Only what is missing is fetched.
 */
import type { Bundle, OperationOutcome, Resource } from 'fhir/r4.js';
import { isAppError } from '../errors.js';
import type { FhirClient, SearchOptions } from '../fhir/client.js';
import { parseRelativeQuery } from '../fhir/client.js';
import { describeIssues, isOperationOutcome, outcomeIsError, summariseIssues } from '../fhir/fhir-error.js';
import { screenResources } from './resource-shape.js';
import type { Problem } from './types.js';

export type PrefetchValue =
  | { readonly state: 'absent' }
  | { readonly state: 'null' }
  | { readonly state: 'resource'; readonly resource: Resource }
  | { readonly state: 'bundle'; readonly resources: readonly Resource[]; readonly outcomes: readonly OperationOutcome[]; readonly next?: string }
  | { readonly state: 'error'; readonly detail: string };

/** Classifies one prefetch entry without trusting its shape. */
export function classifyPrefetch(prefetch: Readonly<Record<string, unknown>> | null | undefined, key: string): PrefetchValue {
  if (!prefetch || !Object.prototype.hasOwnProperty.call(prefetch, key) || prefetch[key] === undefined) return { state: 'absent' };
  const v = prefetch[key];
  if (v === null) return { state: 'null' };
  if (typeof v !== 'object' || Array.isArray(v) || typeof (v as Resource).resourceType !== 'string') {
    return { state: 'error', detail: typeof v === 'string' ? 'value is a string, not a FHIR resource (an error page?)' : 'value is not a FHIR resource' };
  }
  if (isOperationOutcome(v)) return { state: 'error', detail: `OperationOutcome (${describeIssues(summariseIssues(v))})` };
  if ((v as Resource).resourceType !== 'Bundle') return { state: 'resource', resource: v as Resource };
  const b = v as Bundle;
  if (b.entry !== undefined && !Array.isArray(b.entry)) return { state: 'error', detail: 'Bundle.entry is not an array' };
  const resources: Resource[] = [];
  const outcomes: OperationOutcome[] = [];
  for (const e of b.entry ?? []) {
    const r = e?.resource;
    if (!r || typeof r !== 'object' || typeof r.resourceType !== 'string') continue;
    if (isOperationOutcome(r) || e.search?.mode === 'outcome') outcomes.push(r as OperationOutcome);
    else resources.push(r);
  }
  const next = Array.isArray(b.link) ? b.link.find((l) => l?.relation === 'next')?.url : undefined;
  return { state: 'bundle', resources, outcomes, next: typeof next === 'string' ? next : undefined };
}

/** Fills {{context.x}} tokens; undefined if a token cannot be filled (then the query is not run). */
export function fillTemplate(template: string, context: Readonly<Record<string, string | undefined>>): string | undefined {
  let missing = false;
  const out = template.replace(/\{\{\s*context\.(\w+)\s*\}\}/g, (_m, k: string) => {
    const v = context[k];
    if (v === undefined) missing = true;
    return encodeURIComponent(v ?? '');
  });
  return missing || /\{\{/.test(out) ? undefined : out;
}

/** True when a resource is about this patient (or names no patient at all). */
export function belongsToPatient(r: Resource, patientId: string): boolean {
  if (r.resourceType === 'Patient') return r.id === patientId;
  const refs = ['subject', 'patient'].map((k) => (r as unknown as Record<string, { reference?: string } | undefined>)[k]?.reference).filter((x): x is string => typeof x === 'string');
  if (refs.length === 0) return true;
  return refs.some((ref) => new RegExp(`(^|/)Patient/${patientId.replace(/[.-]/g, '\\$&')}(/_history/[^/]+)?$`).test(ref));
}

export interface ResolvedQuery {
  readonly resources: readonly Resource[];
  readonly problems: readonly Problem[];
  /** 'prefetch' (used as given), 'fetched' (we ran it), 'prefetch+fetched' (later pages fetched), 'none' (no data available). */
  readonly origin: 'prefetch' | 'fetched' | 'prefetch+fetched' | 'none';
}

export interface ResolveOptions {
  readonly key: string;
  readonly query: string | undefined;
  readonly patientId: string;
  readonly prefetch?: Readonly<Record<string, unknown>> | null;
  readonly fhir?: FhirClient;
  readonly signal?: AbortSignal;
  readonly search?: Omit<SearchOptions, 'signal'>;
  /** Severity of a failure to get this data ('error' for the Patient, 'warning' for the rest). */
  readonly severity?: Problem['severity'];
}

function fetchProblem(key: string, err: unknown, severity: Problem['severity']): Problem {
  if (isAppError(err)) return { kind: 'fhir_error', severity, code: err.code, source: key, message: `could not fetch ${key}: ${err.code}` };
  return { kind: 'fhir_error', severity, code: 'internal', source: key, message: `could not fetch ${key}` };
}

async function runQuery(o: ResolveOptions, fhir: FhirClient, query: string): Promise<Resource[]> {
  const { resourceType, params } = parseRelativeQuery(query);
  const read = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9.-]{1,64})$/.exec(resourceType);
  if (read) return [await fhir.read(read[1], read[2], { signal: o.signal })];
  const res = await fhir.search(resourceType, params, { ...o.search, signal: o.signal });
  return [...res.resources];
}

/** Resolves one evidence query: prefetch first, then the FHIR server for what is missing. Never throws for data problems. */
export async function resolveQuery(o: ResolveOptions): Promise<ResolvedQuery> {
  const severity = o.severity ?? 'warning';
  const problems: Problem[] = [];
  const pv = classifyPrefetch(o.prefetch, o.key);
  /** The boundary: every resource handed on is screened (resource-shape.ts) and about this patient. */
  const scoped = (rs: readonly Resource[], from: 'prefetch' | 'fetched') => {
    const screened = screenResources(rs, from === 'prefetch' ? `prefetch:${o.key}` : o.key);
    problems.push(...screened.problems);
    const mine = screened.resources.filter((r) => belongsToPatient(r, o.patientId));
    if (mine.length < screened.resources.length) {
      problems.push({ kind: 'prefetch_error', severity: 'warning', source: `prefetch:${o.key}`, message: `${screened.resources.length - mine.length} resource(s) about another patient were ignored` });
    }
    return mine;
  };
  const fetchAll = async (why: string): Promise<ResolvedQuery> => {
    if (!o.fhir || o.query === undefined) {
      problems.push({ kind: 'missing_data', severity, source: o.key, message: `${o.key} not available: ${why} and no FHIR access` });
      return { resources: [], problems, origin: 'none' };
    }
    try {
      return { resources: scoped(await runQuery(o, o.fhir, o.query), 'fetched'), problems, origin: 'fetched' };
    } catch (err) {
      if (isAppError(err) && err.code === 'not_found') {
        problems.push({ kind: 'missing_data', severity, source: o.key, message: `${o.key} not found on the FHIR server` });
        return { resources: [], problems, origin: 'fetched' };
      }
      problems.push(fetchProblem(o.key, err, severity));
      return { resources: [], problems, origin: 'none' };
    }
  };

  switch (pv.state) {
    case 'absent':
      return fetchAll('not prefetched');
    case 'null':
      return { resources: [], problems, origin: 'prefetch' };
    case 'error':
      problems.push({ kind: 'prefetch_error', severity: 'warning', source: `prefetch:${o.key}`, message: `prefetch ${o.key} unusable: ${pv.detail}` });
      return fetchAll('prefetch unusable');
    case 'resource': {
      const expected = o.query ? parseRelativeQuery(o.query).resourceType.split('/')[0] : undefined;
      if (expected !== undefined && pv.resource.resourceType !== expected) {
        problems.push({ kind: 'prefetch_error', severity: 'warning', source: `prefetch:${o.key}`, message: `prefetch ${o.key} holds a ${pv.resource.resourceType}, expected ${expected}` });
        return fetchAll('prefetch unusable');
      }
      if (!belongsToPatient(pv.resource, o.patientId)) {
        problems.push({ kind: 'prefetch_error', severity: 'warning', source: `prefetch:${o.key}`, message: `prefetch ${o.key} is about another patient` });
        return fetchAll('prefetch unusable');
      }
      return { resources: scoped([pv.resource], 'prefetch'), problems, origin: 'prefetch' };
    }
    case 'bundle': {
      const errors = pv.outcomes.filter(outcomeIsError);
      if (errors.length > 0 && pv.resources.length === 0) {
        problems.push({ kind: 'prefetch_error', severity: 'warning', source: `prefetch:${o.key}`, message: `prefetch ${o.key} carried an error outcome (${describeIssues(errors.flatMap(summariseIssues))})` });
        return fetchAll('prefetch failed');
      }
      if (errors.length > 0 || pv.outcomes.some((oc) => oc.issue?.some((i) => i.severity === 'warning'))) {
        problems.push({ kind: 'fhir_warning', severity: 'info', source: `prefetch:${o.key}`, message: `prefetch ${o.key} came with outcome issues (${describeIssues(pv.outcomes.flatMap(summariseIssues))})` });
      }
      const resources = [...pv.resources];
      if (pv.next === undefined) return { resources: scoped(resources, 'prefetch'), problems, origin: 'prefetch' };
      if (!o.fhir) {
        problems.push({ kind: 'truncated', severity: 'info', source: `prefetch:${o.key}`, message: `prefetch ${o.key} is paginated and later pages could not be fetched` });
        return { resources: scoped(resources, 'prefetch'), problems, origin: 'prefetch' };
      }
      try {
        const rest = await o.fhir.continueSearch(pv.next, { ...o.search, maxPages: Math.max(1, (o.search?.maxPages ?? 5) - 1), signal: o.signal });
        return { resources: [...scoped(resources, 'prefetch'), ...scoped(rest.resources, 'fetched')], problems, origin: 'prefetch+fetched' };
      } catch (err) {
        problems.push(fetchProblem(`${o.key} (next page)`, err, 'info'));
        return { resources: scoped(resources, 'prefetch'), problems, origin: 'prefetch' };
      }
    }
  }
}
