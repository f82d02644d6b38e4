/**
 * The write-back port: approve or discard one analysis's draft in one EHR, under that EHR's profile.
 * Around each profile's calls: an idempotency record in the store before the call (a repeat of a finished
 * action changes nothing and says so; an interrupted one is reconciled with the EHR before anything is
 * written again) and one append-only audit row after it (ids, statuses; no PHI beyond ids, no tokens).
 */
import type { AnalysisResult } from '../analysis/analyse.js';
import { isAppError } from '../errors.js';
import type { FhirClient, FhirWriter } from '../fhir/client.js';
import { FhirError } from '../fhir/fhir-error.js';
import type { Logger } from '../log.js';
import { describeOrigin } from '../net/allowlist.js';
import type { AuditTrail, WritebackAction, WritebackStore } from '../store/port.js';
import { idempotencyKey } from './identifiers.js';
import { PROFILE_IMPLS, WritebackPrecondition, type WriteContext } from './profile-impl.js';
import { profileFor, type WritebackProfileName, type WritebackSettings } from './profiles.js';

export type WritebackOutcome =
  /** The EHR accepted the write(s). */
  | { kind: 'written'; profile: WritebackProfileName; resources: string[] }
  /** This action was already done (or an interrupted attempt is found on the server): nothing new written. */
  | { kind: 'already'; profile: WritebackProfileName; resources: string[] }
  /** The other action was done already (approve after discard, discard after filing): nothing written. */
  | { kind: 'conflict'; profile: WritebackProfileName; done: WritebackAction }
  /** The EHR refused (4xx) or a precondition failed; `reason`: the server's words (may hold PHI: show, never log). */
  | { kind: 'refused'; profile: WritebackProfileName; status?: number; reason?: string }
  /** Another attempt of the same action started moments ago. */
  | { kind: 'in-progress'; profile: WritebackProfileName }
  /** No usable answer (unreachable, timeout, 5xx); a timeout is retried later with the same idempotency key. */
  | { kind: 'failed'; profile: WritebackProfileName; status?: number }
  | { kind: 'off'; profile: 'off' };

export interface WritebackRequest {
  fhir: FhirClient & FhirWriter;
  analysisId: string;
  result: AnalysisResult;
  /** The clinician (`Practitioner/123`), or `system` for the background draft. */
  clinician: string;
  conclusion?: string;
  /** The assessment and plan as the clinician edited it (approve); absent: the draft's own, in the AI draft below. */
  assessmentPlan?: string;
  encounter?: string;
}

export interface WritebackDeps {
  store: { writeback: WritebackStore; audit: AuditTrail };
  settings: WritebackSettings;
  log: Logger;
  now?: () => number;
  /** How long a `pending` record is taken as another attempt in progress (default 60 s); older: interrupted. */
  inFlightMs?: number;
}

export class WritebackService {
  private readonly now: () => number;
  constructor(private readonly deps: WritebackDeps) {
    this.now = deps.now ?? Date.now;
  }

  profileFor(fhirBase: string): WritebackProfileName {
    return profileFor(this.deps.settings, fhirBase);
  }

  /** What was done for this analysis in this EHR: `approve`, `discard` or nothing. */
  async done(fhirBase: string, analysisId: string): Promise<WritebackAction | undefined> {
    for (const action of ['approve', 'discard'] as const) {
      if ((await this.deps.store.writeback.get(idempotencyKey(fhirBase, analysisId, action)))?.state === 'done') return action;
    }
    return undefined;
  }

  /**
   * `draft`: the background write when the analysis finishes (nothing once the clinician approved or
   * discarded it). `opts.inFlightMs` overrides how long a `pending` record counts as an attempt under way:
   * a background job passes 0, since the job queue's lease already keeps two attempts from running at once.
   */
  async run(action: WritebackAction, req: WritebackRequest, opts: { inFlightMs?: number } = {}): Promise<WritebackOutcome> {
    const base = req.fhir.baseUrl;
    const profile = this.profileFor(base);
    if (profile === 'off') return { kind: 'off', profile };
    const { writeback, audit } = this.deps.store;
    const key = idempotencyKey(base, req.analysisId, action);
    const inFlightMs = opts.inFlightMs ?? this.deps.inFlightMs ?? 60_000;
    const others: WritebackAction[] = action === 'draft' ? ['approve', 'discard'] : [action === 'approve' ? 'discard' : 'approve'];
    const record = (outcome: string, resources: string[] = [], httpStatus?: number) =>
      audit.append({
        at: this.now(), actor: req.clinician, action: `writeback.${action}`, analysisId: req.analysisId, profile,
        fhirOrigin: describeOrigin(base), outcome, resources, ...(httpStatus !== undefined ? { httpStatus } : {}),
      });

    for (const other of others) {
      if ((await writeback.get(idempotencyKey(base, req.analysisId, other)))?.state === 'done') {
        await record('conflict');
        return { kind: 'conflict', profile, done: other };
      }
    }
    if (action !== 'draft') {
      // The background draft is being written right now: approving or discarding waits for it (no second draft).
      const draft = await writeback.get(idempotencyKey(base, req.analysisId, 'draft'));
      if (draft?.state === 'pending' && this.now() - draft.updatedAt < (this.deps.inFlightMs ?? 60_000)) return { kind: 'in-progress', profile };
    }
    const existing = await writeback.get(key);
    if (existing?.state === 'done') {
      await record('already-done', existing.resources);
      return { kind: 'already', profile, resources: existing.resources };
    }
    const impl = PROFILE_IMPLS[profile];
    const ctx: WriteContext = {
      fhir: req.fhir, analysisId: req.analysisId, result: req.result, clinician: req.clinician,
      conclusion: req.conclusion ?? req.result.report.diagnosticReport.conclusion ?? '', ...(req.assessmentPlan ? { assessmentPlan: req.assessmentPlan } : {}), ...(req.encounter ? { encounter: req.encounter } : {}),
      now: new Date(this.now()),
    };
    try {
      if (!(await writeback.begin({ key, analysisId: req.analysisId, action, profile }))) {
        // Pending: another attempt is running now, or one was interrupted (crash, timeout) and must be reconciled.
        const pending = await writeback.get(key);
        if (pending && pending.state === 'pending' && this.now() - pending.updatedAt < inFlightMs) return { kind: 'in-progress', profile };
        const found = await impl.reconcile(ctx, action);
        if (found) {
          await writeback.settle(key, 'done', found);
          await record('already-done', found);
          return { kind: 'already', profile, resources: found };
        }
        await writeback.settle(key, 'pending', []); // nothing on the server: this attempt takes the claim over
      }
      const resources = await impl[action](ctx);
      await writeback.settle(key, 'done', resources);
      await record(resources.length > 0 ? 'written' : 'nothing-to-write', resources);
      this.deps.log.info({ action, profile, analysisId: req.analysisId, resources }, 'write-back done');
      return { kind: 'written', profile, resources };
    } catch (err) {
      if (err instanceof WritebackPrecondition) {
        await writeback.settle(key, 'refused', []);
        await record('refused');
        return { kind: 'refused', profile, reason: err.reason };
      }
      if (isAppError(err) && err.code === 'upstream_refused') {
        // Refused before any write: this service's Backend Services sign-in (registration, key, scopes) or an
        // address outside the allowlists. Nothing was written; retrying soon does not help.
        this.deps.log.warn({ action, profile, analysisId: req.analysisId, code: err.code }, 'write-back refused before any write');
        await writeback.settle(key, 'refused', []);
        await record('refused');
        return { kind: 'refused', profile, reason: 'The EHR refused this service\'s access (its sign-in or the allowed addresses): nothing was written.' };
      }
      const status = err instanceof FhirError ? err.upstreamStatus : undefined;
      this.deps.log.warn({ action, profile, analysisId: req.analysisId, code: isAppError(err) ? err.code : 'internal', status }, 'write-back not done');
      if (status !== undefined && status >= 400 && status < 500) {
        await writeback.settle(key, 'refused', []);
        await record('refused', [], status);
        return { kind: 'refused', profile, status, ...((err as FhirError).outcomeText ? { reason: (err as FhirError).outcomeText } : {}) };
      }
      // A 5xx said no; without an answer (timeout, connection lost) the write may have happened: the record
      // stays pending, and the next attempt (same idempotency key) reconciles before writing again.
      if (status !== undefined) await writeback.settle(key, 'failed', []);
      await record('failed', [], status);
      return { kind: 'failed', profile, ...(status !== undefined ? { status } : {}) };
    }
  }
}
