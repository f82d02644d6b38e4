/**
 * An in-memory FhirClient over a list of resources, for tests and offline development. It implements
 * the search parameters the evidence queries use (patient/subject, code, status, clinical-status,
 * _count with next links, _sort=-date); anything else is ignored. Calls are counted.
 */
import type { Attachment, Binary, Resource } from 'fhir/r4.js';
import { AppError } from '../../src/errors.js';
import type { BinaryContent, FhirClient, SearchOptions, SearchParams, SearchResult } from '../../src/fhir/client.js';

type AnyResource = Resource & Record<string, unknown>;

function tokenMatches(value: unknown, wanted: string[]): boolean {
  const codings: { system?: string; code?: string }[] = [];
  const collect = (v: unknown) => {
    if (!v || typeof v !== 'object') return;
    const cc = v as { coding?: { system?: string; code?: string }[] };
    codings.push(...(cc.coding ?? []));
  };
  if (Array.isArray(value)) value.forEach(collect);
  else collect(value);
  return wanted.some((w) => {
    const [sys, code] = w.includes('|') ? w.split('|') : [undefined, w];
    return codings.some((c) => c.code === code && (sys === undefined || sys === '' || c.system === sys));
  });
}

function dateOf(r: AnyResource): number {
  const v = (r.effectiveDateTime ?? r.date ?? r.authoredOn ?? r.recordedDate ?? r.started ?? (r.effectivePeriod as { start?: string } | undefined)?.start) as string | undefined;
  return v ? Date.parse(v) || 0 : 0;
}

export class MemoryFhirClient implements FhirClient {
  readonly baseUrl: string;
  readonly calls: string[] = [];
  private readonly resources: AnyResource[];

  constructor(resources: readonly Resource[], baseUrl = 'memory://fhir') {
    this.resources = resources.map((r) => r as AnyResource);
    this.baseUrl = baseUrl;
  }

  async read<T extends Resource = Resource>(resourceType: string, id: string): Promise<T> {
    this.calls.push(`read ${resourceType}`);
    const r = this.resources.find((x) => x.resourceType === resourceType && x.id === id);
    if (!r) throw new AppError('not_found', `${resourceType} not found`);
    return structuredClone(r) as unknown as T;
  }

  async search<T extends Resource = Resource>(resourceType: string, params: SearchParams = {}, opts: SearchOptions = {}): Promise<SearchResult<T>> {
    this.calls.push(`search ${resourceType}`);
    const get = (k: string) => {
      const v = params[k];
      return v === undefined ? undefined : (typeof v === 'string' ? [v] : [...v]).flatMap((x) => x.split(','));
    };
    let out = this.resources.filter((r) => r.resourceType === resourceType);
    const patient = get('patient') ?? get('subject');
    if (patient) {
      out = out.filter((r) => {
        const ref = ((r.subject ?? r.patient) as { reference?: string } | undefined)?.reference ?? '';
        return patient.some((p) => ref === (p.includes('/') ? p : `Patient/${p}`));
      });
    }
    const code = get('code');
    if (code) out = out.filter((r) => tokenMatches(r.code, code) || tokenMatches((r.component as { code?: unknown }[] | undefined)?.map((c) => c.code), code));
    const status = get('status');
    if (status) out = out.filter((r) => status.includes(String(r.status)));
    const clinical = get('clinical-status');
    if (clinical) out = out.filter((r) => tokenMatches(r.clinicalStatus, clinical));
    if (get('_sort')?.[0] === '-date') out = [...out].sort((a, b) => dateOf(b) - dateOf(a));
    const max = Math.min(opts.maxResources ?? 500, Number(get('_count')?.[0] ?? 500) * (opts.maxPages ?? 5));
    return { resources: out.slice(0, max).map((r) => structuredClone(r) as unknown as T), outcomes: [], truncated: out.length > max, pages: 1 };
  }

  async continueSearch<T extends Resource = Resource>(): Promise<SearchResult<T>> {
    this.calls.push('continue');
    return { resources: [], outcomes: [], truncated: false, pages: 0 };
  }

  async readBinary(ref: string): Promise<BinaryContent> {
    this.calls.push('read Binary');
    const id = ref.split('/').pop() ?? '';
    const bin = this.resources.find((r) => r.resourceType === 'Binary' && r.id === id) as unknown as Binary | undefined;
    if (!bin) throw new AppError('not_found', 'Binary not found');
    return { contentType: bin.contentType, data: new Uint8Array(Buffer.from(bin.data ?? '', 'base64')) };
  }

  async readAttachment(att: Attachment): Promise<BinaryContent> {
    if (att.data !== undefined) return { contentType: att.contentType ?? 'application/octet-stream', data: new Uint8Array(Buffer.from(att.data, 'base64')) };
    if (att.url === undefined) throw new AppError('not_found', 'attachment has neither data nor url');
    const res = await this.readBinary(att.url);
    return { contentType: att.contentType ?? res.contentType, data: res.data };
  }
}
