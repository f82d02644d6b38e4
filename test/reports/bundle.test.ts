import type { Bundle, CarePlan, DiagnosticReport, Device, Observation, Provenance, Resource, ServiceRequest } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { resolveFindingsConfig } from '../../src/findings/config.js';
import {
  AIAST, AI_CONFIDENCE_URL, AUTONOMOUS_DR_SCREENING, BODY_SITE, CONDITION_CODES, DIAGNOSTIC_IMAGING, DR_SEVERITY_BY_EYE,
  FUNDUS_PHOTOGRAPHY, ICDR_ANSWERS, OCT_RETINA, OBSERVATION_IMAGING, AUTONOMOUS_NEGATIVE, AUTONOMOUS_POSITIVE,
  AI_DEVICE_TYPE, AI_KIND_VLM, PROVENANCE_AUTHOR, HTEST, RANDOM_WEIGHTS_TAG, RANDOM_WEIGHTS_BANNER, DATA_ABSENT,
} from '../../src/reports/codes.js';
import { validateReportBundle } from './validate.js';
import {
  DIABETIC, RANDOM_MODEL, TRUE_ANSWER, UNGRADABLE, answersFor, context, diabeticAnswers, gradeAnswer, image,
} from '../findings/exam-fixtures.js';
import { buildFor } from './report-fixtures.js';

const resources = (b: Bundle) => (b.entry ?? []).map((e) => e.resource as Resource);
const ofType = <T extends Resource>(b: Bundle, t: T['resourceType']) => resources(b).filter((r) => r.resourceType === t) as T[];
const decode = (data: string | undefined) => Buffer.from(data ?? '', 'base64').toString('utf8');
const codeOf = (o: Observation) => o.code.coding?.[0]?.code;

const CASES = {
  diabetic: () => buildFor(DIABETIC, diabeticAnswers),
  ungradable: () => buildFor(UNGRADABLE, (p) => answersFor(p)),
  'no image': () => buildFor(context([], { imagingStudies: [], notes: [] }), (p) => answersFor(p)),
  'OCT only': () => buildFor(context([image('o1', 'right', 'OPT')]), (p) => answersFor(p)),
  'unparseable answers': () => buildFor(DIABETIC, (p) => answersFor(p, { 'dr-stage:r1': { text: 'Grade: 2' }, 'screening:glaucoma:l1': { text: '是' } })),
  'unknown laterality': () => buildFor(context([image('u1', 'unknown')]), (p) => answersFor(p)),
  'random-weights model': () => buildFor(DIABETIC, diabeticAnswers, { model: RANDOM_MODEL }),
};

describe.each(Object.entries(CASES))('report bundle: %s', (_name, build) => {
  const out = build();
  it('every resource validates against FHIR R4 (medplum validateResource)', () => {
    expect(validateReportBundle(out.bundle)).toEqual([]);
  });
  it('is one transaction whose urn:uuid references all resolve inside it', () => {
    expect(out.bundle.type).toBe('transaction');
    const urls = new Set(out.bundle.entry!.map((e) => e.fullUrl));
    const refs = JSON.stringify(out.bundle).match(/"urn:uuid:[0-9a-f-]+"/g) ?? [];
    for (const r of refs) expect(urls.has(JSON.parse(r))).toBe(true);
    expect(out.bundle.entry!.every((e) => e.request?.method === 'POST' && e.request.url === e.resource?.resourceType)).toBe(true);
    expect(ofType(out.bundle, 'Device')).toHaveLength(1);
    expect(ofType(out.bundle, 'Provenance')).toHaveLength(1);
    expect(ofType(out.bundle, 'DiagnosticReport')).toHaveLength(1);
  });
  it('labels every AI-produced resource AIAST and is preliminary', () => {
    const dr = ofType<DiagnosticReport>(out.bundle, 'DiagnosticReport')[0]!;
    expect(dr.status).toBe('preliminary');
    for (const r of [dr, ...ofType<Observation>(out.bundle, 'Observation')]) {
      expect(r.meta?.security).toContainEqual(AIAST);
    }
    expect(ofType<Observation>(out.bundle, 'Observation').every((o) => o.status === 'preliminary')).toBe(true);
  });
  it('uses only codes listed in codes.ts (no invented codes)', () => {
    const allowed = new Set([
      AIAST, AUTONOMOUS_DR_SCREENING, AUTONOMOUS_NEGATIVE, AUTONOMOUS_POSITIVE, DIAGNOSTIC_IMAGING, FUNDUS_PHOTOGRAPHY, OCT_RETINA,
      OBSERVATION_IMAGING, AI_DEVICE_TYPE, AI_KIND_VLM, PROVENANCE_AUTHOR, HTEST, RANDOM_WEIGHTS_TAG,
      ...Object.values(DR_SEVERITY_BY_EYE), ...Object.values(BODY_SITE), ...Object.values(CONDITION_CODES),
      ...ICDR_ANSWERS.flatMap((a) => [a.loinc, ...(a.snomed ? [a.snomed] : [])]),
    ].map((c) => `${c!.system}|${c!.code}`));
    const seen: string[] = [];
    JSON.stringify(out.bundle, (k, v) => {
      if (v && typeof v === 'object' && typeof v.system === 'string' && typeof v.code === 'string') seen.push(`${v.system}|${v.code}`);
      return v;
    });
    const unknown = seen.filter((s) => !allowed.has(s) && !s.startsWith(`${DATA_ABSENT}|`));
    expect(unknown).toEqual([]);
  });
  it('presentedForm carries the note as text/plain and text/html', () => {
    const dr = ofType<DiagnosticReport>(out.bundle, 'DiagnosticReport')[0]!;
    expect(dr.presentedForm!.map((a) => a.contentType)).toEqual(['text/plain; charset=utf-8', 'text/html; charset=utf-8']);
    expect(decode(dr.presentedForm![0]!.data)).toBe(out.note.text);
    expect(decode(dr.presentedForm![1]!.data)).toBe(out.note.html);
    expect(out.note.text).toMatch(/^(\*\*\* .* \*\*\*\n)?AI-GENERATED DRAFT - PENDING CLINICIAN REVIEW\n/);
  });
});

describe('report content', () => {
  it('diabetic: per-eye LOINC DR severity with ICDR answers, bodySite, confidence', () => {
    const obs = ofType<Observation>(CASES.diabetic().bundle, 'Observation');
    const right = obs.find((o) => codeOf(o) === '71491-5')!;
    const left = obs.find((o) => codeOf(o) === '71490-7')!;
    expect(right.valueCodeableConcept?.coding?.map((c) => c.code)).toEqual(['LA18645-4', '312904009']);
    expect(left.valueCodeableConcept?.coding?.map((c) => c.code)).toEqual(['LA18646-2', '312905005']);
    expect(right.bodySite?.coding?.[0]?.code).toBe('362502000');
    expect(right.extension).toEqual([{ url: AI_CONFIDENCE_URL, valueDecimal: 0.72 }]);
    expect(obs.find((o) => codeOf(o) === '105914-6')?.valueCodeableConcept?.coding?.[0]?.code).toBe('LA34399-8');
    const me = obs.find((o) => codeOf(o) === '37231002' && o.bodySite?.coding?.[0]?.code === '362503005')!;
    expect(me.valueBoolean).toBe(true);
    const hem = obs.find((o) => o.code.text?.startsWith('Retinal hemorrhage, left eye'))!;
    expect(hem.code.coding).toBeUndefined();
  });
  it('diabetic: conclusion and SNOMED conclusion codes, category, imagingStudy, encounter', () => {
    const dr = CASES.diabetic().diagnosticReport;
    expect(dr.conclusionCode?.map((c) => c.coding?.[0]?.code)).toEqual(['312905005', '312904009', '37231002']);
    expect(dr.conclusion).toMatch(/^AI-generated draft pending clinician review/);
    expect(dr.conclusion).toContain('left eye ICDR 3 (severe non-proliferative diabetic retinopathy)');
    expect(dr.conclusion).toContain('Referral urgency: urgent.');
    expect(dr.category?.[0]?.coding?.[0]?.code).toBe('IMG');
    expect(dr.category?.[1]?.text).toBe('Ophthalmology');
    expect(dr.imagingStudy).toEqual([{ reference: 'ImagingStudy/fundus-1' }]);
    expect(dr.encounter).toEqual({ reference: 'Encounter/e-1' });
    expect(dr.code.coding?.[0]?.code).toBe('20067007');
  });
  it('Device and Provenance describe the model and the inputs used', () => {
    const out = CASES.diabetic();
    const device = ofType<Device>(out.bundle, 'Device')[0]!;
    expect(device.version).toEqual([{ value: '2026.03-stage3' }]);
    expect(device.identifier?.[0]?.value).toBe('a'.repeat(64));
    expect(JSON.stringify(device.property)).toContain('"cpu"');
    expect(device.type?.coding?.[0]?.code).toBe('Artificial-Intelligence');
    const prov = ofType<Provenance>(out.bundle, 'Provenance')[0]!;
    expect(prov.agent[0]?.who?.reference).toBe(out.fullUrls.device);
    expect(prov.agent[0]?.type?.coding?.[0]?.code).toBe('author');
    expect(prov.entity?.map((e) => e.what.reference)).toEqual(['ImagingStudy/fundus-1', 'DocumentReference/note-1']);
    expect(prov.target.map((t) => t.reference)).toEqual([out.fullUrls.diagnosticReport, ...out.fullUrls.observations, ...out.fullUrls.serviceRequests, out.fullUrls.carePlan]);
    expect(prov.reason?.[0]?.coding?.[0]?.code).toBe('AIAST');
  });
  it('ungradable eye: explicit ungradable DR result and gradability observation, no screening rows', () => {
    const obs = ofType<Observation>(CASES.ungradable().bundle, 'Observation');
    const left = obs.find((o) => codeOf(o) === '71490-7')!;
    expect(left.dataAbsentReason?.coding?.[0]?.code).toBe('not-performed');
    expect(left.dataAbsentReason?.text).toContain('out of focus');
    expect(obs.some((o) => o.code.text?.startsWith('Image gradability') && o.valueCodeableConcept?.text === 'Ungradable')).toBe(true);
    expect(obs.filter((o) => o.bodySite?.coding?.[0]?.code === '362503005' && o.code.text?.includes('AI screening'))).toEqual([]);
    expect(obs.some((o) => codeOf(o) === '105914-6')).toBe(false);
  });
  it('no image: a report with no results that says nothing was assessed', () => {
    const out = CASES['no image']();
    expect(ofType(out.bundle, 'Observation')).toEqual([]);
    expect(out.diagnosticReport.result).toBeUndefined();
    expect(out.diagnosticReport.conclusion).toContain('Referral urgency: undetermined.');
    expect(out.note.text).toContain('- DR staging: no fundus photograph');
  });
  it('unparseable answers become data-absent "error", never a guessed value', () => {
    const obs = ofType<Observation>(CASES['unparseable answers']().bundle, 'Observation');
    const right = obs.find((o) => codeOf(o) === '71491-5')!;
    expect(right.valueCodeableConcept).toBeUndefined();
    expect(right.dataAbsentReason?.coding?.[0]?.code).toBe('error');
    const gl = obs.find((o) => codeOf(o) === '23986001' && o.bodySite?.coding?.[0]?.code === '362503005')!;
    expect(gl.valueBoolean).toBeUndefined();
    expect(gl.dataAbsentReason?.coding?.[0]?.code).toBe('error');
  });
  it('unknown laterality: text-only DR code, no bodySite', () => {
    const obs = ofType<Observation>(CASES['unknown laterality']().bundle, 'Observation');
    const dr = obs.find((o) => o.code.text?.startsWith('Diabetic retinopathy severity level (ICDR), eye of unknown'))!;
    expect(dr.code.coding).toBeUndefined();
    expect(dr.bodySite).toBeUndefined();
  });
  it('105914-6 negative only when both eyes are graded non-referable and macular edema is absent', () => {
    const neg = ofType<Observation>(buildFor(DIABETIC, (p) => answersFor(p)).bundle, 'Observation');
    expect(neg.find((o) => codeOf(o) === '105914-6')?.valueCodeableConcept?.coding?.[0]?.code).toBe('LA34398-0');
    const withMe = ofType<Observation>(buildFor(DIABETIC, (p) => answersFor(p, { 'screening:macular-edema:r1': TRUE_ANSWER(0.9) })).bundle, 'Observation');
    expect(withMe.some((o) => codeOf(o) === '105914-6')).toBe(false);
    const off = buildFor(DIABETIC, diabeticAnswers, { config: resolveFindingsConfig({ emitAutonomousScreeningCode: false }) });
    expect(ofType<Observation>(off.bundle, 'Observation').some((o) => codeOf(o) === '105914-6')).toBe(false);
  });
  it('inconsistent findings carry a note and keep their values', () => {
    const out = buildFor(DIABETIC, (p) => answersFor(p, { 'dr-stage:r1': gradeAnswer(3, 0.8) }));
    const right = ofType<Observation>(out.bundle, 'Observation').find((o) => codeOf(o) === '71491-5')!;
    expect(right.valueCodeableConcept?.coding?.[0]?.code).toBe('LA18646-2');
    expect(right.note?.[0]?.text).toMatch(/^INCONSISTENT \(not resolved\): screening answered "no diabetic retinopathy"/);
  });
  it('random-weights model: banner in note header and footer, conclusion, Device name and a meta.tag on every resource', () => {
    const out = CASES['random-weights model']();
    expect(out.note.text.startsWith(`*** ${RANDOM_WEIGHTS_BANNER} ***\nAI-GENERATED DRAFT`)).toBe(true);
    expect(out.note.text.trimEnd().endsWith(`*** ${RANDOM_WEIGHTS_BANNER} ***`)).toBe(true);
    expect(out.note.html).toContain(RANDOM_WEIGHTS_BANNER);
    expect(out.diagnosticReport.conclusion!.startsWith(RANDOM_WEIGHTS_BANNER)).toBe(true);
    expect(out.diagnosticReport.code.text).toContain(RANDOM_WEIGHTS_BANNER);
    expect(out.bundle.meta?.tag).toContainEqual(RANDOM_WEIGHTS_TAG);
    for (const r of resources(out.bundle)) expect(r.meta?.tag).toEqual([HTEST, RANDOM_WEIGHTS_TAG]);
    expect(ofType<Device>(out.bundle, 'Device')[0]!.deviceName?.[0]?.name).toContain(RANDOM_WEIGHTS_BANNER);
    expect(CASES.diabetic().note.text).not.toContain('RANDOM WEIGHTS');
  });
  it('model text is escaped in HTML and sanitised in plain text', () => {
    const out = buildFor(DIABETIC, (p) => answersFor(p, { 'describe:r1': { text: '<script>alert(1)</script>\u0007 fundus & disc' } }));
    expect(out.note.html).not.toContain('<script>');
    expect(out.note.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; fundus &amp; disc');
    expect(out.note.text).toContain('<script>alert(1)</script> fundus & disc');
    expect(out.note.text).not.toContain('\u0007');
    const long = buildFor(DIABETIC, (p) => answersFor(p, { 'describe:r1': { text: 'x'.repeat(10_000) } }));
    expect(long.note.text).toContain(`${'x'.repeat(4000)} [truncated]`);
  });
});

describe('the management plan as FHIR proposals', () => {
  const out = CASES.diabetic();
  const byUrl = new Map(out.bundle.entry!.map((e) => [e.fullUrl, e.resource as Resource]));
  const [sr] = ofType<ServiceRequest>(out.bundle, 'ServiceRequest');
  const [cp] = ofType<CarePlan>(out.bundle, 'CarePlan');

  it('a referral ServiceRequest: draft proposal, priority from the rules, reasons -> the findings', () => {
    expect(ofType<ServiceRequest>(out.bundle, 'ServiceRequest')).toHaveLength(1);
    expect(sr).toMatchObject({ status: 'draft', intent: 'proposal', priority: 'urgent', subject: { reference: 'Patient/p-diabetic-1' }, encounter: { reference: 'Encounter/e-1' } });
    expect(sr!.code?.text).toBe('Referral to ophthalmology (retina) within 1 month');
    expect(sr!.occurrencePeriod).toEqual({ start: '2026-11-29', end: '2026-12-29' });
    const reasons = sr!.reasonReference!.map((r) => byUrl.get(r.reference!) as Observation);
    expect(reasons.map((o) => o.code.text)).toEqual([
      'right eye diabetic retinopathy severity (ICDR), by AI', 'left eye diabetic retinopathy severity (ICDR), by AI', 'Macular edema, left eye (AI screening)',
    ]);
    expect(sr!.meta?.security).toContainEqual(AIAST);
    expect(sr!.note?.[0]?.text).toMatch(/^Rule-derived proposal .*rules dr-icdr2, dr-icdr3-me \(volmo-plan-rules\/1\.0\.0\)/);
  });

  it('the follow-up as a CarePlan: draft proposal referencing the referral, model plan marked, disagreement flagged', () => {
    expect(cp).toMatchObject({ status: 'draft', intent: 'proposal', subject: { reference: 'Patient/p-diabetic-1' } });
    expect(cp!.activity?.[0]?.reference?.reference).toBe(out.fullUrls.serviceRequests[0]);
    expect(cp!.activity?.[1]?.detail).toMatchObject({ status: 'not-started', scheduledPeriod: { start: '2026-11-29', end: '2026-12-29' } });
    expect(cp!.activity?.[1]?.detail?.description).toContain('[rules dr-icdr2, dr-icdr3-me; rule-derived]');
    const notes = cp!.note!.map((n) => n.text);
    expect(notes.some((n) => n.startsWith('DISAGREEMENT') && n.includes('model-later-than-rules'))).toBe(true);
    expect(notes.some((n) => n.startsWith('VOLMO Outline Follow-Up Care (model-generated, unverified): 1. Follow-up care: Retina review in 2-4 months'))).toBe(true);
    expect(cp!.meta?.security).toContainEqual(AIAST);
  });

  it('no referral, no ServiceRequest; a follow-up still gives a CarePlan; nothing assessed gives neither', () => {
    const negative = CASES.ungradable();
    expect(ofType(negative.bundle, 'ServiceRequest')).toHaveLength(0);
    expect(ofType<CarePlan>(negative.bundle, 'CarePlan')[0]!.activity!.map((a) => a.detail?.code?.text)).toEqual([
      'repeat the photographs (with pupil dilation); if still ungradable, dilated eye examination within 1 month', 'retinal screening again in 12–24 months',
    ]);
    const none = CASES['no image']();
    expect(ofType(none.bundle, 'CarePlan')).toHaveLength(0);
    expect(none.note.text).toContain('No plan: nothing was assessed');
  });
});
