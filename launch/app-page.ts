/** Gathers what the app page shows for a session: the Patient (read with the session's token) and the latest drafts. */
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
import { appPage, type DraftSection, type DraftView, type PatientView, type ReviewView } from './pages.js';
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

/** The analysis a card's link named: found (and already checked to be this patient's), or no longer available. */
export type AppPageFocus = { analysis: { id: string; startedAt: number; result: AnalysisResult } } | { missing: true };

export async function renderAppPage(deps: {
  focus?: AppPageFocus;
  session: AppSession;
  fetch: GuardedFetch;
  analyses: Pick<AnalysisCache, 'recentForSubject'>;
  log: Logger;
  writeback?: WritebackService;
  sessionId?: string;
}): Promise<string> {
  const { session } = deps;
  if (!session.patient) {
    return appPage({ needPatientBanner: true, patientProblem: 'The EHR launched the app without a patient; open it from a patient chart.', drafts: [] });
  }
  let patient: PatientView | undefined;
  let patientProblem: string | undefined;
  try {
    const fhir = new HttpFhirClient({ baseUrl: session.iss, fetch: deps.fetch, tokens: smartSessionTokenSource(() => ({ accessToken: session.accessToken, expiresAt: session.tokenExpiresAt })), logger: deps.log });
    patient = patientView(await fhir.read<Patient>('Patient', session.patient));
  } catch (err) {
    deps.log.warn({ code: isAppError(err) ? err.code : 'internal' }, 'SMART app: patient read failed');
    patientProblem = 'The patient could not be read from the EHR.';
  }
  const profile = deps.writeback?.profileFor(session.iss) ?? 'off';
  const where = `the EHR at ${describeOrigin(session.iss)}`;
  const review = async (id: string, conclusion: string): Promise<ReviewView | undefined> => {
    if (!deps.writeback || profile === 'off' || !deps.sessionId) return undefined;
    const done = await deps.writeback.done(session.iss, id);
    return {
      state: done === 'approve' ? 'filed' : done === 'discard' ? 'discarded' : 'open',
      approvePlan: describeWrite(profile, 'approve', where), discardPlan: describeWrite(profile, 'discard', where),
      conclusion, sessionId: deps.sessionId, csrf: session.csrf ?? '',
    };
  };
  const latest = await deps.analyses.recentForSubject(analysisSubject(session.iss, session.patient));
  const named = deps.focus && 'analysis' in deps.focus ? deps.focus.analysis : undefined;
  const recent = named ? [named, ...latest.filter((a) => a.id !== named.id)] : latest;
  const reviews = await Promise.all(recent.map(({ id, result }) => review(id, result.report.diagnosticReport.conclusion ?? '')));
  const drafts: DraftView[] = recent.map(({ id, result }, i) => ({
    id,
    ...(named && id === named.id ? { fromCard: true } : {}),
    ...(result.findings?.eyes ? { eyeSummary: eyeSummary(result.findings, result.context?.facts) } : {}),
    ...(reviews[i] ? { review: reviews[i] } : {}),
    noteText: result.report.note.text,
    ...draftSections(result.report.note.document),
    random: result.model.random,
    model: `${result.model.name} ${result.model.version}`,
    ...(result.report.diagnosticReport.issued ? { generatedAt: result.report.diagnosticReport.issued } : {}),
  }));
  const focusNotice = deps.focus && 'missing' in deps.focus ? 'The draft named by the card is no longer available; the latest drafts for this patient are shown.' : undefined;
  return appPage({ ...(focusNotice ? { focusNotice } : {}), needPatientBanner: session.needPatientBanner, ...(patient ? { patient } : {}), ...(patientProblem ? { patientProblem } : {}), drafts });
}
