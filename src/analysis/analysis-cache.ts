/**
 * Analyses keyed by what they were computed from (patient, image content hashes, case text, model, task
 * set): a hook call that finds a finished analysis answers at once; one that finds it running waits a
 * bounded time; otherwise it starts one in the background. A finished analysis is also found by the
 * references of its images (`referencesKey`): when the pixels cannot be fetched (PACS down), the analysis
 * of the same images for the same subject, model and tasks is served, marked as not re-read. Model runs outlive the hook call that started
 * them (CDS clients expect answers in about a second; a 2B model on CPU takes far longer), and their
 * result is shown on the next hook for the same evidence and kept for the clinician's review.
 * In memory only (it holds PHI): entries expire after `ttlMs` and the map is bounded.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { EvidenceBundle } from '../evidence/types.js';
import type { AnalysisResult } from './analyse.js';

export interface AnalysisEntry {
  /** Stable for the analysis: the card uuid (CDS feedback refers to it) and the draft's id in the SMART app. */
  id: string;
  /** Whose analysis: `analysisSubject(fhirServer, patientId)` — patient ids are only unique within one EHR. */
  subject: string;
  promise: Promise<AnalysisResult>;
  result?: AnalysisResult;
  startedAt: number;
  /** `referencesKey` of its images, when known: indexed once the analysis has finished. */
  referencesKey?: string;
}

/** A FHIR base URL in one canonical form: lower-case host, no default port, no trailing slash. */
export function canonicalBaseUrl(url: string): string {
  try {
    return new URL(url).href.replace(/\/+$/, '');
  } catch {
    return url.replace(/\/+$/, '');
  }
}

/** The EHR's FHIR base URL and the patient id: what identifies a patient across EHRs (hook and SMART launch alike). */
export function analysisSubject(fhirServer: string | undefined, patientId: string): string {
  return `${fhirServer ? canonicalBaseUrl(fhirServer) : ''}|Patient/${patientId}`;
}

/**
 * The subject for a hook whose client is bound to no FHIR server it named (or an unsigned call): scoped to
 * that client. It is not a URL, so no SMART launch (keyed by its FHIR base) can ever match it.
 */
export function clientSubject(iss: string | undefined, patientId: string): string {
  return `cds-client:${iss ?? '(unsigned)'}|Patient/${patientId}`;
}

export function analysisKey(subject: string, encounterId: string | undefined, evidence: EvidenceBundle, modelSha: string, taskSet: string): string {
  const images = [...evidence.images.right, ...evidence.images.left, ...evidence.images.unknown].map((i) => `${i.eye}:${i.contentHash}:${i.gradability.status}`).sort();
  return createHash('sha256').update(JSON.stringify([subject, encounterId ?? null, images, evidence.caseText, modelSha, taskSet])).digest('hex');
}

/**
 * The lookup key by image references (imaging/references.ts): the same subject, model and task set and the
 * same list of references. Undefined when there are none (nothing to match).
 */
export function referencesKey(subject: string, references: readonly string[], modelSha: string, taskSet: string): string | undefined {
  if (references.length === 0) return undefined;
  return createHash('sha256').update(JSON.stringify(['references', subject, [...references].sort(), modelSha, taskSet])).digest('hex');
}

export class AnalysisCache {
  private readonly entries = new Map<string, AnalysisEntry>();
  private readonly byId = new Map<string, AnalysisEntry>();
  private readonly byReferences = new Map<string, AnalysisEntry>();

  constructor(private readonly opts: { ttlMs: number; maxEntries: number; now?: () => number }) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /**
   * The finished or running analysis for `key`, starting `run` when there is none. A failed run is forgotten
   * (the next call retries). `referencesKey` indexes the finished analysis by its image references;
   * `onStored` runs once the new entry's result is stored (e.g. to queue a second stage).
   */
  getOrStart(key: string, subject: string, run: () => Promise<AnalysisResult>, opts: { referencesKey?: string; onStored?: (entry: AnalysisEntry) => void } = {}): AnalysisEntry {
    const existing = this.entries.get(key);
    if (existing && this.now() - existing.startedAt < this.opts.ttlMs) return existing;
    this.evict();
    const id = randomUUID();
    const promise = run().then(
      (r) => {
        entry.result = r;
        if (entry.referencesKey && this.entries.get(key) === entry) this.byReferences.set(entry.referencesKey, entry);
        opts.onStored?.(entry);
        return r;
      },
      (e: unknown) => {
        if (this.entries.get(key) === entry) {
          this.entries.delete(key);
          this.byId.delete(id);
        }
        throw e;
      },
    );
    const entry: AnalysisEntry = { id, subject, startedAt: this.now(), promise, ...(opts.referencesKey ? { referencesKey: opts.referencesKey } : {}) };
    entry.promise.catch(() => {}); // observed by waiters; never an unhandled rejection
    this.entries.set(key, entry);
    this.byId.set(entry.id, entry);
    return entry;
  }

  /**
   * Replaces the result of a finished, unexpired analysis in place (a second stage finished): same id, same
   * entry, no new draft. False when it has expired or been evicted meanwhile.
   */
  update(id: string, result: AnalysisResult): boolean {
    const e = this.byId.get(id);
    if (!e?.result || this.now() - e.startedAt >= this.opts.ttlMs) return false;
    e.result = result;
    return true;
  }

  /** A finished analysis by its id (for the clinician's review), while it has not expired. */
  get(id: string): AnalysisResult | undefined {
    const e = this.byId.get(id);
    return e && this.now() - e.startedAt < this.opts.ttlMs ? e.result : undefined;
  }

  /** The newest finished, unexpired analysis of the same image references (see `referencesKey`). */
  findByReferences(key: string | undefined): { id: string; startedAt: number; result: AnalysisResult } | undefined {
    const e = key === undefined ? undefined : this.byReferences.get(key);
    if (!e?.result || this.now() - e.startedAt >= this.opts.ttlMs) return undefined;
    return { id: e.id, startedAt: e.startedAt, result: e.result };
  }

  /**
   * Finished, unexpired analyses of `subject` (`analysisSubject(fhirBase, patientId)`), newest first
   * (for the SMART app).
   */
  latestForPatient(subject: string, limit = 3): { id: string; startedAt: number; result: AnalysisResult }[] {
    const now = this.now();
    const found: { id: string; startedAt: number; result: AnalysisResult }[] = [];
    for (const e of this.byId.values()) {
      if (!e.result || now - e.startedAt >= this.opts.ttlMs) continue;
      if (e.subject === subject) found.push({ id: e.id, startedAt: e.startedAt, result: e.result });
    }
    return found.sort((a, b) => b.startedAt - a.startedAt).slice(0, limit);
  }

  private evict(): void {
    const now = this.now();
    const drop = (k: string) => {
      const e = this.entries.get(k)!;
      this.byId.delete(e.id);
      if (e.referencesKey && this.byReferences.get(e.referencesKey) === e) this.byReferences.delete(e.referencesKey);
      this.entries.delete(k);
    };
    for (const [k, e] of this.entries) if (now - e.startedAt >= this.opts.ttlMs) drop(k);
    while (this.entries.size >= this.opts.maxEntries) drop(this.entries.keys().next().value as string);
  }
}

/** Resolves with the result if it arrives within `ms`, else with undefined; rejects if the run fails in time. */
export async function waitFor<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | undefined> {
  if (signal?.aborted) return undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    onAbort = () => resolve(undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
