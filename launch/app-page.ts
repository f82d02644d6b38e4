/**
 * Gathers what the app page shows for a session: the Patient (read with the session's token), one draft in
 * full (the one asked for, else the latest) with the images it used and the orders it was made for, and the
 * patient's other retained drafts with their date, review status and order.
 */
import type { Patient } from 'fhir/r4.js';
import { analysisSubject, type AnalysisCache } from '../src/analysis/analysis-cache.js';
import { HttpFhirClient } from '../src/fhir/http-client.js';
import { smartSessionTokenSource } from '../src/fhir/token-source.js';
import { isAppError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import type { GuardedFetch } from '../src/net/guarded-fetch.js';
import type { AppSession } from './launch-router.js';
import type { AnalysisResult } from '../src/analysis/analyse.js';
import type { NoteDocument } from '../src/reports/note.js';
import { eyeSummary } from './eye-summary.js';
import { appPage, type DraftSection, type DraftView, type EarlierDraftView, type PatientView, type ReviewView } from './pages.js';
import { imageViews } from './app-images.js';
import { describeOrigin } from '../src/net/allowlist.js';
import { describeWrite } from '../src/writeback/profiles.js';
import type { WritebackService } from '../src/writeback/service.js';

export function patientView(p: Patient): PatientView {
  const name = p.name?.find((n) => n.use === 'official') ?? p.name?.[0];
  const display = name?.text ?? [...(name?.given ?? []), name?.family].filter(Boolean).join(' ');
  const mrn = p.identifier?.find((i) => i.type?.coding?.some((c) => c.code === 'MR'))?.value;
  return {
    name: display || '(no name recorded)',
    ...(p.gender ? { gender: p.gender } : {}),
    ...(p.birthDate ? { birthDate: p.birthDate } : {}),
    ...(mrn ? { mrn } : {}),
  };
}

const PER_EYE = [/^Diabetic retinopathy/, /^Screening/, /^Macular hole/];

/** The draft's per-eye summary, its rule-derived plan and VOLMO's own plan, from the note's sections. */
export function draftSections(doc: NoteDocument): Pick<DraftView, 'summary' | 'plan' | 'modelPlan'> {
  const find = (re: RegExp): DraftSection | undefined => doc.sections.find((s) => re.test(s.title));
  const summary = doc.sections.filter((s) => PER_EYE.some((re) => re.test(s.title)));
  const plan = find(/^Plan\b/);
  const modelPlan = find(/^VOLMO's own assessment and plan/);
  return { summary, ...(plan ? { plan } : {}), ...(modelPlan ? { modelPlan } : {}) };
}

/**
 * The analysis to show: the one a card's link named or the clinician picked from the list of this patient's
 * drafts (already checked to be this patient's), or that one is no longer available.
 */
export type AppPageFocus = { analysis: { id: string; startedAt: number; result: AnalysisResult }; fromCard?: boolean } | { missing: true; fromCard?: boolean };

/** The EHR's FHIR server as the signed-in clinician: the session's (fresh) access token, through the guarded fetch. */
export function clinicianFhir(session: Pick<AppSession, 'iss' | 'accessToken' | 'tokenExpiresAt'>, fetch: GuardedFetch, log: Logger): HttpFhirClient {
  return new HttpFhirClient({ baseUrl: session.iss, fetch, tokens: smartSessionTokenSource(() => ({ accessToken: session.accessToken, expiresAt: session.tokenExpiresAt })), logger: log });
}

/** How many of the patient's retained drafts the page lists. */
export const DRAFTS_LISTED = 10;

const STATUS_WORDS = { open: 'Draft, not yet reviewed', filed: 'Approved and filed', discarded: 'Discarded' } as const;

/** The orders of a draft in plain words (the order's own name, each name once; its id only where it has none). */
export function orderNames(result: Pick<AnalysisResult, 'orders'>): string[] {
  return [...new Set((result.orders ?? []).map((o) => o.display ?? (o.reference ? `order ${o.reference.split('/').pop()}` : 'an order without a name')))];
}

/** The app's own link to a draft of this session. */
export function draftHref(sessionId: string, analysisId: string): string {
  return `/app?session=${encodeURIComponent(sessionId)}&analysis=${encodeURIComponent(analysisId)}`;
}

export async function renderAppPage(deps: {
  focus?: AppPageFocus;
  session: AppSession;
  fetch: GuardedFetch;
  analyses: Pick<AnalysisCache, 'recentForSubject'>;
  log: Logger;
  writeback?: WritebackService;
  sessionId?: string;
}): Promise<string> {
  const sessionId = deps.sessionId;
  const { session } = deps;
  if (!session.patient) {
    return appPage({ needPatientBanner: true, patientProblem: 'The EHR launched the app without a patient; open it from a patient chart.', drafts: [] });
  }
  let patient: PatientView | undefined;
  let patientProblem: string | undefined;
  try {
    patient = patientView(await clinicianFhir(session, deps.fetch, deps.log).read<Patient>('Patient', session.patient));
  } catch (err) {
    deps.log.warn({ code: isAppError(err) ? err.code : 'internal' }, 'SMART app: patient read failed');
    patientProblem = 'The patient could not be read from the EHR.';
  }
  if (patientProblem) {
    // Identity unconfirmed: a draft is shown only beside the patient the EHR confirmed for this chart.
    return appPage({ needPatientBanner: true, patientProblem, drafts: [], emptyMessage: 'No draft is shown: the patient of this chart could not be confirmed with the EHR. Reload the page, or open VOLMO again from the patient\'s chart.' });
  }
  const profile = deps.writeback?.profileFor(session.iss) ?? 'off';
  const where = `the EHR at ${describeOrigin(session.iss)}`;
  const review = async (id: string, conclusion: string, assessmentPlan: string): Promise<ReviewView | undefined> => {
    if (!deps.writeback || profile === 'off' || !sessionId) return undefined;
    const done = await deps.writeback.done(session.iss, id);
    return {
      state: done === 'approve' ? 'filed' : done === 'discard' ? 'discarded' : 'open',
      approvePlan: describeWrite(profile, 'approve', where), discardPlan: describeWrite(profile, 'discard', where),
      conclusion, assessmentPlan, sessionId, csrf: session.csrf ?? '',
    };
  };
  const latest = await deps.analyses.recentForSubject(analysisSubject(session.iss, session.patient), DRAFTS_LISTED);
  const named = deps.focus && 'analysis' in deps.focus ? deps.focus.analysis : undefined;
  // One draft in full (the one named, else the latest); the patient's other drafts are listed below it.
  const shown = named ?? latest[0];
  const others = latest.filter((a) => a.id !== shown?.id);
  const stateOf = async (id: string): Promise<ReviewView['state']> => {
    if (!deps.writeback || profile === 'off') return 'open';
    const done = await deps.writeback.done(session.iss, id);
    return done === 'approve' ? 'filed' : done === 'discard' ? 'discarded' : 'open';
  };
  const drafts: DraftView[] = [];
  if (shown) {
    const { id, result } = shown;
    const reviewView = await review(id, result.report.diagnosticReport.conclusion ?? '', (draftSections(result.report.note.document).plan?.lines ?? []).join('\n'));
    const images = imageViews(result.evidence);
    const orders = orderNames(result);
    drafts.push({
      id,
      ...(named && id === named.id && deps.focus && 'analysis' in deps.focus && deps.focus.fromCard !== false ? { fromCard: true } : {}),
      ...(result.findings?.eyes ? { eyeSummary: eyeSummary(result.findings, result.context?.facts) } : {}),
      ...(reviewView ? { review: reviewView } : {}),
      ...(images.length && sessionId ? { images: { sessionId, items: images } } : {}),
      ...(orders.length ? { orders } : {}),
      noteText: result.report.note.text,
      ...draftSections(result.report.note.document),
      random: result.model.random,
      model: `${result.model.name} ${result.model.version}`,
      ...(result.report.diagnosticReport.issued ? { generatedAt: result.report.diagnosticReport.issued } : {}),
    });
  }
  const states = await Promise.all(others.map((a) => stateOf(a.id)));
  const earlier: EarlierDraftView[] = others.map(({ id, startedAt, result }, i) => ({
    id,
    date: result.report.diagnosticReport.issued ?? new Date(startedAt).toISOString(),
    status: STATUS_WORDS[states[i]!],
    orders: orderNames(result),
    ...(sessionId ? { href: draftHref(sessionId, id) } : {}),
    random: result.model.random,
  }));
  const focusNotice = deps.focus && 'missing' in deps.focus
    ? `The draft ${deps.focus.fromCard === false ? 'asked for' : 'named by the card'} is no longer available; the latest draft for this patient is shown.`
    : undefined;
  return appPage({ ...(focusNotice ? { focusNotice } : {}), needPatientBanner: session.needPatientBanner, ...(patient ? { patient } : {}), ...(patientProblem ? { patientProblem } : {}), drafts, ...(earlier.length ? { earlier } : {}) });
}
