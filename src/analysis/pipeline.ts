/**
 * The use-case, top to bottom, shared by hook calls and the watcher:
 *
 *   1. list evidence     gather-evidence.ts `listEvidence`: clinical context + image references (no pixels)
 *   2. identify          analysis-cache.ts `analysisKey`: subject, references, case-text inputs, model, tasks
 *   3. find or start     analysis-cache.ts: a finished analysis is served as it is; otherwise, in the background:
 *   4. fetch pixels      gather-evidence.ts `fetchEvidence`: DICOMweb / attachments, checks, gradability
 *   5. plan, exam,       analyse.ts `analyseEvidence`: task plan (findings/plan.ts), VOLMO exam (model),
 *      aggregate, report  findings per eye, management plan, draft report bundle (reports/)
 *   6. second stage      assess-plan-stage.ts: VOLMO's own assessment and plan, when on
 *
 * Only step 1 is in a hook's path; steps 3–6 run at most once per identity, whoever asks first.
 *
 * On a durable store, step 3 queues a job (store jobs table) instead of running in this process: the job
 * runner of whichever replica claims it runs steps 4–6 (`runAnalysisJob`) and stores the analysis. The job
 * carries what is needed to fetch again — the listed evidence (image references, never pixels) and how to
 * read attachments: the hook's own FHIR access token (sealed with the store's data key, used only until the
 * token's own expiry) or, for the watcher, this service's Backend Services client.
 */
import type { EvidenceBundle } from '../evidence/types.js';
import type { FhirClient } from '../fhir/client.js';
import type { FindingsConfig } from '../findings/config.js';
import type { Logger } from '../log.js';
import type { VlmEngine } from '../model/runtime/types.js';
import { analyseEvidence } from './analyse.js';
import { createHash } from 'node:crypto';
import { AppError } from '../errors.js';
import { selectImages } from '../imaging/select.js';
import type { AnalysisStore, ClaimedJob } from '../store/port.js';
import type { AnalysisResult } from './analyse.js';
import { analysisKey, type AnalysisCache, type AnalysisEntry } from './analysis-cache.js';
import { JobError, type JobFailure } from './job-runner.js';
import { scheduleAssessPlan, type AssessPlanStageDeps } from './assess-plan-stage.js';
import { fetchEvidence, type GatherEvidenceDeps, type ListedEvidence } from './gather-evidence.js';
import { NoUsableImages } from './no-usable-images.js';
import { mergeOrders, type OrderRef } from './orders.js';

/** How long the background fetch of one patient's pixels may take (PACS, attachments). */
const FETCH_TIMEOUT_MS = 120_000;

export interface PipelineDeps {
  log: Logger;
  engine: VlmEngine;
  findings: FindingsConfig;
  analyses: AnalysisCache;
  /** Pixel fetching and checks: the guarded fetch, PACS, pixel workers and caps. */
  images: GatherEvidenceDeps;
  maxTiles?: number;
  now?: () => Date;
  /** VOLMO's own assessment and plan as a second stage; absent = off. */
  assessPlan?: AssessPlanStageDeps;
}

export interface AnalysisRequest {
  /** Whose analysis (analysis-cache.ts `analysisSubject` / `clientSubject`). */
  subject: string;
  patientId: string;
  encounterId?: string;
  listed: ListedEvidence;
  /** Where attachment URLs are read (the hook's or the watcher's FHIR client). */
  fhir?: FhirClient;
  /** How a job run elsewhere reads attachments again (absent: DICOMweb and the configured PACS only). */
  access?: JobAccess;
  /** The eye orders of the hook that asked (kept with the result: the SMART app says which order a draft belongs to). */
  orders?: OrderRef[];
}

/**
 * How a job reads FHIR attachments again: the hook's own token (sealed in the job, never used past its
 * expiry), or this service's Backend Services client for that FHIR server (the watcher's).
 */
export type JobAccess = { kind: 'token'; fhirServer: string; token: string; expiresAt: number } | { kind: 'backend'; fhirServer: string };

/** What an analysis job carries (sealed at rest, dropped when the job is finished): references, never pixels, never bytes. */
export interface AnalysisJobPayload {
  v: 1;
  subject: string;
  patientId: string;
  encounterId?: string;
  modelSha: string;
  /** The listed evidence with inline attachment data left out (see `inline`). */
  listed: ListedEvidence;
  /** Refs whose image was inline in a FHIR resource: read again from that resource (`fhirRef`) when the job runs, and checked against the sha256 of what was listed. */
  inline: { index: number; sha256: string }[];
  access?: JobAccess;
  /** The orders of the hook that queued it (references and names only). */
  orders?: OrderRef[];
}

/** A FHIR resource an image can be inline in, read again by id (groups: type, id). */
export const RESOURCE_REF = /^(Media|DocumentReference|Binary)\/([A-Za-z0-9\-.]{1,64})$/;

/**
 * The listed evidence as a job carries it: image references only. An image inline in a FHIR resource
 * (Media.content.data) is carried as that resource's reference and read again when the job runs; evidence
 * whose inline image has no readable reference (e.g. prefetch bundles with urn:uuid ids) is not queueable.
 */
function jobEvidence(listed: ListedEvidence, access: JobAccess | undefined): { listed: ListedEvidence; inline: AnalysisJobPayload['inline'] } | undefined {
  const inline: AnalysisJobPayload['inline'] = [];
  const refs = listed.refs.map((r, i) => {
    if (r.source.kind !== 'attachment' || r.source.data === undefined) return r;
    inline.push({ index: i, sha256: sha256(r.source.data) });
    const { data: _bytes, ...source } = r.source;
    return { ...r, source };
  });
  // Inline images are read again over FHIR: without FHIR access (prefetch only), or without a resource id, they stay in-process.
  if (inline.length > 0 && (!access || inline.some(({ index }) => !RESOURCE_REF.test(listed.refs[index]!.fhirRef ?? '')))) return undefined;
  return { listed: { ...listed, refs }, inline };
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** The image re-read for a job is not the one that was listed (the record changed, or prefetch and server disagree). */
export class ImageChanged extends AppError {
  constructor() {
    super('conflict', 'an image resource changed or is gone since the job was queued');
  }
}

/** Puts the inline images back: reads each resource again (same version, or the job fails) and takes its attachment. */
async function rehydrate(listed: ListedEvidence, inline: AnalysisJobPayload['inline'], fhir: FhirClient | undefined, signal: AbortSignal): Promise<ListedEvidence> {
  if (inline.length === 0) return listed;
  if (!fhir) throw new AppError('upstream_refused', 'no FHIR access to read the inline images of this job again');
  const refs = [...listed.refs];
  for (const { index, sha256: want } of inline) {
    const ref = refs[index]!;
    const [type, id] = ref.fhirRef!.split('/') as [string, string];
    const resource = await fhir.read(type, id, { signal });
    const again = selectImages([resource]).find((r) => r.source.kind === 'attachment' && r.source.data !== undefined && sha256(r.source.data) === want);
    if (!again) throw new ImageChanged();
    refs[index] = { ...ref, source: again.source };
  }
  return { ...listed, refs };
}

/** The task set as part of an analysis's identity (a change of tasks or thresholds is another analysis). */
const taskSetKeys = new WeakMap<FindingsConfig, string>();
function taskSetKey(findings: FindingsConfig): string {
  let key = taskSetKeys.get(findings);
  if (key === undefined) taskSetKeys.set(findings, (key = JSON.stringify(findings)));
  return key;
}

/**
 * Steps 2–6: the finished (in memory or in the durable store), running or recently failed analysis of these
 * images, started when there is none.
 */
export async function analysisFor(deps: PipelineDeps, req: AnalysisRequest): Promise<AnalysisEntry> {
  const modelSha = deps.engine.info.manifestSha256;
  const key = analysisKey(req.subject, req.listed, modelSha, taskSetKey(deps.findings));
  let evidence: EvidenceBundle | undefined;
  const carried = jobEvidence(req.listed, req.access);
  const job = (): AnalysisJobPayload => ({
    v: 1,
    subject: req.subject,
    patientId: req.patientId,
    ...(req.encounterId ? { encounterId: req.encounterId } : {}),
    modelSha,
    listed: carried!.listed,
    inline: carried!.inline,
    ...(req.access ? { access: req.access } : {}),
    ...(req.orders?.length ? { orders: req.orders } : {}),
  });
  // Not tied to any caller's signal: the run outlives the hook that started it.
  return deps.analyses.findOrStart(
    key,
    req.subject,
    { references: req.listed.references, modelSha },
    async () => {
      evidence = await fetchEvidence(req.listed, { fhir: req.fhir, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) }, deps.images);
      return examine(deps, evidence, req);
    },
    {
      onStored: deps.assessPlan && ((stored) => void (evidence && scheduleAssessPlan(deps.assessPlan!, deps.analyses, stored, evidence))),
      ...(carried ? { job } : {}),
    },
  );
}

async function examine(deps: PipelineDeps, evidence: EvidenceBundle, req: { patientId: string; encounterId?: string; orders?: OrderRef[] }): Promise<AnalysisResult> {
  if (usableImages(evidence) === 0) throw new NoUsableImages(evidence.problems);
  const result = await analyseEvidence(
    { engine: deps.engine, findings: deps.findings, now: deps.now, maxTiles: deps.maxTiles, deferAssessPlan: Boolean(deps.assessPlan) },
    evidence,
    { patientId: req.patientId, encounterId: req.encounterId },
  );
  deps.log.info({ urgency: result.findings.referral.urgency, questions: result.timings.questions, modelMs: Math.round(result.timings.modelMs), random: result.model.random }, 'exam analysed');
  return req.orders?.length ? { ...result, orders: mergeOrders(undefined, req.orders) } : result;
}

export class ModelMismatch extends Error {
  readonly code = 'model_mismatch';
}

/** What the replica that stored an analysis queues after it (the second stage, the background draft). */
export type FollowUps = (analysis: { id: string; subject: string; result: AnalysisResult }, payload: AnalysisJobPayload) => Promise<void>;

/**
 * Steps 4–6 of a claimed job: fetch the pixels again, examine, store the analysis under the job's id and
 * key, keep it in this replica's cache, then queue its follow-up jobs (`followUps`: the second stage and the
 * background draft, on the same queue) — or, without them, start the second stage here. A retry of a job
 * whose analysis is already stored (its follow-ups could not be queued, or its completion was lost) does not
 * examine again: it queues the follow-ups. Resolves with the analysis id.
 */
export async function runAnalysisJob(
  deps: PipelineDeps,
  job: ClaimedJob<AnalysisJobPayload>,
  ctx: { store: AnalysisStore; fhirFor: (access: JobAccess | undefined) => FhirClient | undefined; signal: AbortSignal; now?: () => number; followUps?: FollowUps },
): Promise<string> {
  const p = job.payload;
  const now = ctx.now ?? Date.now;
  if (p.modelSha !== deps.engine.info.manifestSha256) throw new ModelMismatch('the job was queued for another model build');
  const earlier = ctx.followUps ? await ctx.store.findById(job.id) : undefined;
  if (earlier && earlier.key === job.key) {
    deps.analyses.adopt(job.key, p.subject, job.id, earlier.startedAt, earlier.result);
    await ctx.followUps!({ id: job.id, subject: p.subject, result: earlier.result }, p);
    return job.id;
  }
  const startedAt = now();
  const evidence = await refetchEvidence(deps, p, ctx);
  const result = await examine(deps, evidence, p);
  if (ctx.signal.aborted) throw Object.assign(new Error('the job lease was lost'), { code: 'lease_lost' });
  await ctx.store.save({ id: job.id, key: job.key, subject: p.subject, references: p.listed.references, modelSha: p.modelSha, startedAt, finishedAt: now(), result });
  const entry = deps.analyses.adopt(job.key, p.subject, job.id, startedAt, result);
  if (ctx.followUps) await ctx.followUps({ id: job.id, subject: p.subject, result }, p);
  else if (deps.assessPlan) scheduleAssessPlan(deps.assessPlan, deps.analyses, entry, evidence);
  return job.id;
}

/** The evidence of a job, fetched again from what it carries (references, sealed access): pixels included. */
export async function refetchEvidence(
  deps: Pick<PipelineDeps, 'images'>,
  p: Pick<AnalysisJobPayload, 'listed' | 'inline' | 'access'>,
  ctx: { fhirFor: (access: JobAccess | undefined) => FhirClient | undefined; signal: AbortSignal },
): Promise<EvidenceBundle> {
  const fhir = ctx.fhirFor(p.access);
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]);
  const listed = await rehydrate(p.listed, p.inline, fhir, signal);
  return fetchEvidence(listed, { fhir, signal }, deps.images);
}

/** What a failed analysis job is: no usable images is an outcome (dead at once, shown as such); the rest are retried. */
export function classifyAnalysisFailure(e: unknown): JobFailure {
  if (e instanceof JobError) return e.failure;
  if (e instanceof NoUsableImages) return { errorKind: 'no_usable_images', retryable: false, holdMs: e.retryAfterMs, detail: e.problems };
  if (e instanceof ImageChanged) return { errorKind: 'image_changed', retryable: false, holdMs: 60_000 };
  const code = (e as { code?: unknown } | null)?.code;
  const errorKind = typeof code === 'string' && /^[a-z_]{1,40}$/.test(code) ? code : 'internal';
  return { errorKind, retryable: true, holdMs: 15 * 60_000 };
}

function usableImages(evidence: EvidenceBundle): number {
  const { right, left, unknown } = evidence.images;
  return right.length + left.length + unknown.length;
}
