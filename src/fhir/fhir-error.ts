/** Turning FHIR error responses into typed, PHI-free errors. */
import type { OperationOutcome } from 'fhir/r4.js';
import type { ErrorCode } from '../errors.js';
import { NetError, type NetFailure } from '../net/net-error.js';

export interface IssueSummary {
  readonly severity: string;
  readonly code: string;
}

export class FhirError extends NetError {
  /** severity/code of each issue; `diagnostics` text is deliberately not kept (it can echo PHI). */
  readonly issues: readonly IssueSummary[];

  /**
   * The OperationOutcome's human-readable text (details.text / diagnostics, at most 500 characters), for
   * showing to the clinician whose write was refused. It can echo PHI: not enumerable, so log serialisers
   * and JSON.stringify leave it out; never put it in a log line.
   */
  declare readonly outcomeText: string | undefined;

  constructor(reason: NetFailure, origin: string, detail: string, options: { status?: number; issues?: IssueSummary[]; code?: ErrorCode; cause?: unknown; outcomeText?: string } = {}) {
    super(reason, origin, detail, { upstreamStatus: options.status, code: options.code, cause: options.cause });
    this.name = 'FhirError';
    this.issues = options.issues ?? [];
    Object.defineProperty(this, 'outcomeText', { value: options.outcomeText, enumerable: false });
  }
}

export function isOperationOutcome(value: unknown): value is OperationOutcome {
  return typeof value === 'object' && value !== null && (value as { resourceType?: unknown }).resourceType === 'OperationOutcome';
}

export function summariseIssues(outcome: OperationOutcome): IssueSummary[] {
  return (outcome.issue ?? []).slice(0, 10).map((i) => ({ severity: String(i.severity ?? 'error'), code: String(i.code ?? 'unknown') }));
}

/** True when an outcome reports an error (fatal/error), as opposed to warnings/information. */
export function outcomeIsError(outcome: OperationOutcome): boolean {
  return (outcome.issue ?? []).some((i) => i.severity === 'error' || i.severity === 'fatal');
}

export function describeIssues(issues: readonly IssueSummary[]): string {
  return issues.length === 0 ? 'no issue details' : issues.map((i) => `${i.severity}:${i.code}`).join(', ');
}

/** The error for a non-2xx FHIR response. */
export function httpStatusError(origin: string, status: number, outcome: OperationOutcome | undefined): FhirError {
  const issues = outcome ? summariseIssues(outcome) : [];
  const code: ErrorCode = status === 404 || status === 410 ? 'not_found' : 'upstream_error';
  const text = outcome ? outcomeText(outcome) : undefined;
  return new FhirError('http_status', origin, `FHIR server answered HTTP ${status} (${describeIssues(issues)})`, { status, issues, code, ...(text ? { outcomeText: text } : {}) });
}

/** The issues' details.text / diagnostics joined, control characters removed, at most 500 characters. */
export function outcomeText(outcome: OperationOutcome): string | undefined {
  const parts = (outcome.issue ?? []).slice(0, 5).map((i) => (typeof i.details?.text === 'string' ? i.details.text : typeof i.diagnostics === 'string' ? i.diagnostics : '')).filter(Boolean);
  const text = parts.join('; ').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return text ? text.slice(0, 500) : undefined;
}
