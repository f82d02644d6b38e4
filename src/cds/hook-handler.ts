/**
 * The hook use-case: verify the FHIR server is allowed, gather the evidence (prefetch first), run the
 * VOLMO exam, and answer with a card. Without a loaded model it answers honestly with no cards — it never
 * invents findings. Draft reports are kept for the clinician's review (DraftStore).
 */
import { randomUUID } from 'node:crypto';
import { analyseEvidence, type AnalysisResult } from '../analysis/analyse.js';
import { gatherEvidence, type GatherEvidenceDeps } from '../analysis/gather-evidence.js';
import { AppError, isAppError } from '../errors.js';
import type { FhirClient } from '../fhir/client.js';
import { fhirClientForHook } from '../fhir/hook-client.js';
import type { FindingsConfig } from '../findings/config.js';
import type { Logger } from '../log.js';
import type { VlmEngine } from '../model/runtime/types.js';
import type { GuardedFetch } from '../net/guarded-fetch.js';
import { buildAnalysisCard } from './cards.js';
import type { CdsRequest } from './request-schema.js';
import type { HookHandler } from './types.js';

/** Where finished analyses wait for the clinician (the SMART app reads them). */
export interface DraftStore {
  put(id: string, result: AnalysisResult): Promise<void>;
  get(id: string): Promise<AnalysisResult | undefined>;
}

export class MemoryDraftStore implements DraftStore {
  private readonly drafts = new Map<string, AnalysisResult>();
  constructor(private readonly max = 500) {}
  async put(id: string, result: AnalysisResult): Promise<void> {
    if (this.drafts.size >= this.max) this.drafts.delete(this.drafts.keys().next().value as string);
    this.drafts.set(id, result);
  }
  async get(id: string): Promise<AnalysisResult | undefined> {
    return this.drafts.get(id);
  }
}

export interface HookHandlerDeps {
  log: Logger;
  /** The outbound fetch (allowlist + address checks): FHIR servers, PACS. */
  fetch: GuardedFetch;
  pacs?: GatherEvidenceDeps['pacs'];
  /** The loaded model, or null when none is configured or it failed to load. */
  engine: () => VlmEngine | null;
  findings: FindingsConfig;
  drafts: DraftStore;
  maxTiles?: number;
  now?: () => Date;
}

function fhirFor(request: CdsRequest, deps: HookHandlerDeps, serviceId: string): FhirClient | undefined {
  try {
    return fhirClientForHook(request, { fetch: deps.fetch, logger: deps.log });
  } catch (e) {
    if (isAppError(e) && e.code === 'upstream_refused') {
      deps.log.warn({ service: serviceId }, 'hook call names a FHIR server that is not on the allowlist: using prefetch only, no request sent');
      return undefined;
    }
    throw e;
  }
}

export function createHookHandler(deps: HookHandlerDeps): HookHandler {
  return async (request, service, { signal }) => {
    const engine = deps.engine();
    if (!engine) return { cards: [] };
    const { patientId, encounterId } = request.context;
    const evidence = await gatherEvidence(
      { patientId, encounterId, prefetch: request.prefetch, fhir: fhirFor(request, deps, service.id), signal },
      { fetch: deps.fetch, pacs: deps.pacs },
    );
    if (evidence.problems.some((p) => p.source === 'patient' && p.severity === 'error')) {
      throw new AppError('bad_request', 'the patient could not be read from prefetch or the FHIR server', { status: 412, expose: true });
    }
    const imageCount = evidence.images.right.length + evidence.images.left.length + evidence.images.unknown.length;
    if (imageCount === 0) {
      deps.log.info({ service: service.id, problems: evidence.problems.map((p) => p.kind) }, 'no retinal images: no AI analysis');
      return { cards: [] };
    }
    const result = await analyseEvidence({ engine, findings: deps.findings, now: deps.now, maxTiles: deps.maxTiles }, evidence, { patientId, encounterId }, { signal });
    const draftId = randomUUID();
    await deps.drafts.put(draftId, result);
    deps.log.info(
      { service: service.id, draftId, urgency: result.findings.referral.urgency, questions: result.timings.questions, modelMs: Math.round(result.timings.modelMs), random: result.model.random },
      'exam analysed',
    );
    return { cards: [buildAnalysisCard(result, { uuid: draftId })] };
  };
}
