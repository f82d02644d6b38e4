/**
 * What each write-back profile sends to the EHR (pure FHIR shaping + calls through the FHIR writer). The
 * idempotency records, the audit trail and the error handling around these calls are in service.ts.
 */
import type { Bundle, DiagnosticReport, DocumentReference, Provenance, Resource } from 'fhir/r4.js';
import type { AnalysisResult } from '../analysis/analyse.js';
import { AppError } from '../errors.js';
import type { FhirClient, FhirWriter } from '../fhir/client.js';
import { AIAST, PROVENANCE_AUTHOR, RANDOM_WEIGHTS_BANNER } from '../reports/codes.js';
import type { WritebackAction } from '../store/port.js';
import { identifierQuery, referenceFromLocation, WRITEBACK_SYSTEM, writebackIdentifier } from './identifiers.js';
import type { WritebackProfileName } from './profiles.js';

export interface WriteContext {
  fhir: FhirClient & FhirWriter;
  analysisId: string;
  result: AnalysisResult;
  /** The clinician: `Practitioner/123` (or PractitionerRole/…), from fhirUser. */
  clinician: string;
  /** The conclusion as the clinician edited it (approve). */
  conclusion: string;
  /** The assessment and plan as the clinician edited it (approve), when the form carried one. */
  assessmentPlan?: string;
  /** The launch's encounter (`Encounter/9`), used when the analysis has none. */
  encounter?: string;
  now: Date;
}

/** A refusal decided before any call (e.g. Epic needs an encounter): shown to the clinician, nothing written. */
export class WritebackPrecondition extends AppError {
  constructor(readonly reason: string) {
    super('bad_request', reason, { expose: true });
    this.name = 'WritebackPrecondition';
  }
}

export interface ProfileImpl {
  /**
   * The AI draft written in the background when the analysis finishes (SMART Backend Services, actor
   * `system`), before any clinician has seen it; [] where the profile writes nothing before approval.
   */
  draft(ctx: WriteContext): Promise<string[]>;
  approve(ctx: WriteContext): Promise<string[]>;
  discard(ctx: WriteContext): Promise<string[]>;
  /**
   * What an interrupted attempt of `action` left on the server (its references), or undefined when nothing
   * is found. Profiles whose writes are idempotent on the server answer undefined: repeating is safe.
   */
  reconcile(ctx: WriteContext, action: WritebackAction): Promise<string[] | undefined>;
}

const VERIFIER = { system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'verifier', display: 'Verifier' };
const NOTE_TYPE = { system: 'http://loinc.org', code: '11506-3', display: 'Progress note' };
const base64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** The clinician's conclusion; a random-weights model's output keeps its banner whatever was edited. */
export function finalConclusion(ctx: WriteContext): string {
  const text = ctx.conclusion.trim();
  return ctx.result.model.random && !text.includes(RANDOM_WEIGHTS_BANNER) ? `${RANDOM_WEIGHTS_BANNER}. ${text}` : text;
}

/** The note as filed: the clinician's conclusion, then the AI draft it was based on (which carries the banner for a test model). */
export function filedNoteText(ctx: WriteContext, signed: boolean): string {
  const head = signed ? `Conclusion (approved by ${ctx.clinician}, ${ctx.now.toISOString()}):` : `Conclusion (proposed by ${ctx.clinician} for signing, ${ctx.now.toISOString()}):`;
  const plan = ctx.assessmentPlan?.trim() ? `\n\nAssessment and plan (as reviewed):\n${ctx.assessmentPlan.trim()}` : '';
  return `${head}\n${finalConclusion(ctx)}${plan}\n\n--- AI-generated draft this conclusion was based on ---\n${ctx.result.report.note.text}`;
}

const ref = (r: Resource | undefined, location?: string): string | undefined => (r?.id ? `${r.resourceType}/${r.id}` : referenceFromLocation(location));

const tagQuery = (code: string) => `_tag=${encodeURIComponent(`${WRITEBACK_SYSTEM}|${code}`)}`;

/**
 * The draft transaction for one analysis: every resource carries an identifier derived from the analysis id
 * (Provenance, which has none in R4, a tag), and the AI Device is referenced by its server id (it is written
 * first, by conditional create, once per model build).
 *
 * Why no ifNoneExist on the entries: FHIR servers built on @medplum/fhir-router (the sandbox, Medplum) refuse
 * a transaction with conditional entries when it has more than 8 entries (test/writeback shows it), and a
 * draft has more. A retry still never duplicates: the transaction is atomic, the report's identifier is
 * searched first (found: the whole draft is there), and the store's idempotency record keeps two attempts
 * from running at once.
 */
export function draftTransaction(result: AnalysisResult, analysisId: string, deviceRef: string): Bundle {
  const deviceUrn = result.report.fullUrls.device;
  const bundle = JSON.parse(JSON.stringify(result.report.bundle).replaceAll(JSON.stringify(deviceUrn), JSON.stringify(deviceRef))) as Bundle;
  bundle.entry = (bundle.entry ?? []).filter((e) => e.resource?.resourceType !== 'Device');
  const counts = new Map<string, number>();
  for (const entry of bundle.entry) {
    const r = entry.resource as Resource & { identifier?: { system?: string; value?: string }[]; meta?: { tag?: { system?: string; code?: string }[] } };
    if (!r) continue;
    const n = counts.get(r.resourceType) ?? 0;
    counts.set(r.resourceType, n + 1);
    if (r.resourceType === 'Provenance') {
      r.meta = { ...(r.meta ?? {}), tag: [...(r.meta?.tag ?? []), { system: WRITEBACK_SYSTEM, code: `${analysisId}/Provenance/draft` }] };
    } else {
      r.identifier = [...(r.identifier ?? []), writebackIdentifier(analysisId, r.resourceType === 'DiagnosticReport' ? 'DiagnosticReport' : `${r.resourceType}/${n}`)];
    }
  }
  return bundle;
}

/** The analysis's AI Device on the server (conditional create on the model manifest checksum): `Device/id`. */
export async function ensureDevice(fhir: FhirClient & FhirWriter, result: AnalysisResult): Promise<string> {
  const device = result.report.bundle.entry?.find((e) => e.resource?.resourceType === 'Device')?.resource as (Resource & { identifier?: { system?: string; value?: string }[] }) | undefined;
  const id = device?.identifier?.[0];
  if (!device || !id) throw new AppError('internal', 'the draft has no AI Device');
  const r = await fhir.create(device, { ifNoneExist: identifierQuery(id), retry: true });
  const found = ref(r.resource, r.location) ?? ref(await findOne(fhir, 'Device', { identifier: `${id.system}|${id.value}` }));
  if (!found) throw new AppError('upstream_error', 'the AI Device is not found after its conditional create');
  return found;
}

/** Writes the preliminary draft unless its report is already there; the report found or written. */
export async function ensureDraft(fhir: FhirClient & FhirWriter, result: AnalysisResult, analysisId: string): Promise<{ report: DiagnosticReport; device: string }> {
  const drId = writebackIdentifier(analysisId, 'DiagnosticReport');
  const findReport = () => findOne<DiagnosticReport>(fhir, 'DiagnosticReport', { identifier: `${drId.system}|${drId.value}` });
  const device = await ensureDevice(fhir, result);
  let report = await findReport();
  if (!report) {
    await fhir.transaction(draftTransaction(result, analysisId, device), { retry: false });
    report = await findReport();
    if (!report) throw new AppError('upstream_error', 'the draft report is not found after the transaction');
  }
  return { report, device };
}

async function findOne<T extends Resource>(fhir: FhirClient, type: string, params: Record<string, string>): Promise<T | undefined> {
  return (await fhir.search<T>(type, params, { maxPages: 1, maxResources: 2 })).resources.find((r) => r.resourceType === type);
}

const etagOf = (r: Resource) => (r.meta?.versionId ? `W/"${r.meta.versionId}"` : undefined);

const fhirStandard: ProfileImpl = {
  async draft(ctx) {
    const { report, device } = await ensureDraft(ctx.fhir, ctx.result, ctx.analysisId);
    return [`DiagnosticReport/${report.id}`, device];
  },
  async approve(ctx) {
    const { fhir, analysisId } = ctx;
    const { report: dr, device } = await ensureDraft(fhir, ctx.result, analysisId);
    const reportRef = `DiagnosticReport/${dr.id}`;
    const written = [reportRef];
    if (dr.status !== 'final') {
      const clinician = { reference: ctx.clinician };
      const title = dr.code?.text?.replace(/ \(draft\)$/, '') ?? 'AI-assisted ophthalmic imaging review';
      const final: DiagnosticReport = {
        ...dr,
        status: 'final',
        issued: ctx.now.toISOString(),
        performer: [clinician],
        resultsInterpreter: [clinician],
        code: { ...dr.code, text: title },
        conclusion: finalConclusion(ctx),
        presentedForm: [{ contentType: 'text/plain; charset=utf-8', language: 'en', title, data: base64(filedNoteText(ctx, true)) }],
      };
      const etag = etagOf(dr);
      await fhir.update(final, { ...(etag ? { ifMatch: etag } : {}), retry: true });
    }
    const tag = `${analysisId}/Provenance/approve`;
    const prov: Provenance = {
      resourceType: 'Provenance',
      meta: { tag: [{ system: WRITEBACK_SYSTEM, code: tag }] },
      target: [{ reference: reportRef }],
      recorded: ctx.now.toISOString(),
      reason: [{ coding: [{ ...AIAST }] }],
      agent: [
        { type: { coding: [{ ...PROVENANCE_AUTHOR }] }, who: { reference: device } },
        { type: { coding: [VERIFIER] }, who: { reference: ctx.clinician } },
      ],
    };
    const p = await fhir.create(prov, { ifNoneExist: tagQuery(tag), retry: true });
    const provRef = ref(p.resource, p.location);
    if (provRef) written.push(provRef);
    return written;
  },
  async discard(ctx) {
    const drId = writebackIdentifier(ctx.analysisId, 'DiagnosticReport');
    const dr = await findOne<DiagnosticReport>(ctx.fhir, 'DiagnosticReport', { identifier: `${drId.system}|${drId.value}` });
    if (!dr) return [];
    if (dr.status !== 'entered-in-error') {
      const etag = etagOf(dr);
      await ctx.fhir.update({ ...dr, status: 'entered-in-error' }, { ...(etag ? { ifMatch: etag } : {}), retry: true });
    }
    return [`DiagnosticReport/${dr.id}`];
  },
  async reconcile() {
    return undefined; // every write above is conditional or guarded by If-Match: repeating it is safe
  },
};

/** The note's identifier: `draft` (written in the background, then updated on approval) or `approve`. */
const noteId = (analysisId: string, what: 'draft' | 'approve') => writebackIdentifier(analysisId, `DocumentReference/${what}`);

function noteResource(ctx: WriteContext, signed: boolean, encounter: string | undefined): DocumentReference {
  const title = `${ctx.result.model.random ? `${RANDOM_WEIGHTS_BANNER}: ` : ''}Eye exam imaging review (AI-assisted)`;
  return {
    resourceType: 'DocumentReference',
    identifier: [noteId(ctx.analysisId, 'approve')],
    status: 'current',
    docStatus: signed ? 'final' : 'preliminary',
    type: { coding: [NOTE_TYPE], text: 'Eye exam imaging review' },
    subject: { reference: ctx.result.context.patient },
    date: ctx.now.toISOString(),
    author: [{ reference: ctx.clinician }],
    description: title,
    content: [{ attachment: { contentType: 'text/plain', data: base64(filedNoteText(ctx, signed)), title } }],
    context: {
      ...(encounter ? { encounter: [{ reference: encounter }] } : {}),
      period: { end: ctx.now.toISOString() },
    },
  };
}

/** The note written in the background: the AI draft as it stands, unsigned, no author (the EHR files it under its background user). */
function draftNoteResource(ctx: WriteContext, encounter: string): DocumentReference {
  const title = `${ctx.result.model.random ? `${RANDOM_WEIGHTS_BANNER}: ` : ''}Eye exam imaging review (AI draft, not yet reviewed)`;
  const text = `AI-generated draft, not yet reviewed by a clinician (${ctx.now.toISOString()}):\n\n${ctx.result.report.note.text}`;
  return {
    resourceType: 'DocumentReference',
    identifier: [noteId(ctx.analysisId, 'draft')],
    status: 'current',
    docStatus: 'preliminary',
    type: { coding: [NOTE_TYPE], text: 'Eye exam imaging review' },
    subject: { reference: ctx.result.context.patient },
    date: ctx.now.toISOString(),
    description: title,
    content: [{ attachment: { contentType: 'text/plain', data: base64(text), title } }],
    context: { encounter: [{ reference: encounter }], period: { end: ctx.now.toISOString() } },
  };
}

async function findNote(ctx: WriteContext, what: 'draft' | 'approve'): Promise<DocumentReference | undefined> {
  const id = noteId(ctx.analysisId, what);
  return findOne<DocumentReference>(ctx.fhir, 'DocumentReference', { patient: ctx.result.context.patient, identifier: `${id.system}|${id.value}` });
}

const NO_ENCOUNTER = 'Epic files a note in an encounter, and neither the analysis nor this launch names one: open the app from the patient\'s encounter.';

function noteProfile(signed: boolean): ProfileImpl {
  return {
    async draft(ctx) {
      // Oracle Health accepts only signed notes: nothing is written before the clinician approves.
      if (signed) return [];
      const encounter = ctx.result.context.encounter;
      if (!encounter) throw new WritebackPrecondition('the analysis names no encounter, and Epic files a note only in an encounter');
      const found = await findNote(ctx, 'draft');
      if (found) return [`DocumentReference/${found.id}`];
      // No conditional create on Epic: the idempotency record (service.ts) and the search above guard against a repeat.
      const r = await ctx.fhir.create(draftNoteResource(ctx, encounter), { retry: false });
      const written = ref(r.resource, r.location);
      return written ? [written] : [];
    },
    async approve(ctx) {
      const encounter = ctx.result.context.encounter ?? ctx.encounter;
      if (!signed && !encounter) throw new WritebackPrecondition(NO_ENCOUNTER);
      const note = noteResource(ctx, signed, encounter);
      // Epic: the note written in the background is updated (the clinician's conclusion, still unsigned) rather than a second one added.
      const draft = signed ? undefined : await findNote(ctx, 'draft');
      if (draft?.id && draft.status === 'current') {
        const etag = etagOf(draft);
        await ctx.fhir.update<DocumentReference>(
          { ...note, id: draft.id, identifier: [...(draft.identifier ?? []).filter((i) => i.value !== note.identifier![0]!.value), ...note.identifier!], context: draft.context ?? note.context },
          { ...(etag ? { ifMatch: etag } : {}), retry: true },
        );
        return [`DocumentReference/${draft.id}`];
      }
      // No conditional create on these EHRs: the idempotency record (service.ts) guards against a repeat.
      const r = await ctx.fhir.create(note, { retry: false });
      const written = ref(r.resource, r.location);
      return written ? [written] : [];
    },
    async discard(ctx) {
      // Epic: an unsigned note written in the background is marked entered-in-error; otherwise nothing was written.
      const draft = signed ? undefined : await findNote(ctx, 'draft');
      if (!draft?.id) return [];
      if (draft.status !== 'entered-in-error') {
        const etag = etagOf(draft);
        await ctx.fhir.update<DocumentReference>({ ...draft, status: 'entered-in-error' }, { ...(etag ? { ifMatch: etag } : {}), retry: true });
      }
      return [`DocumentReference/${draft.id}`];
    },
    async reconcile(ctx, action) {
      if (action === 'discard') return [];
      const found = await findNote(ctx, action);
      return found ? [`DocumentReference/${found.id}`] : undefined;
    },
  };
}

export const PROFILE_IMPLS: Record<Exclude<WritebackProfileName, 'off'>, ProfileImpl> = {
  'fhir-standard': fhirStandard,
  epic: noteProfile(false),
  oracle: noteProfile(true),
};
