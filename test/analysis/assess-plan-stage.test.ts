/**
 * VOLMO's own assessment and plan as a second stage: the screening result is stored and served while the
 * five steps are still running, and the same analysis entry (same id, no second draft) is updated when they
 * finish, with disagreements against the rule-derived plan flagged. The engine is a scripted test double.
 */
import { describe, expect, it } from 'vitest';
import { analyseEvidence } from '../../src/analysis/analyse.js';
import { AnalysisCache } from '../../src/analysis/analysis-cache.js';
import { scheduleAssessPlan, type AssessPlanStageDeps } from '../../src/analysis/assess-plan-stage.js';
import { assessPlanEnabled, InProcessSecondStage } from '../../src/analysis/second-stage.js';
import { loadConfig } from '../../src/config.js';
import type { EvidenceBundle, EvidenceImage } from '../../src/evidence/types.js';
import { resolveFindingsConfig } from '../../src/findings/config.js';
import { silentLogger } from '../../src/log.js';
import type { Answer, ExamInput, VlmEngine } from '../../src/model/runtime/types.js';
import { validateReportBundle } from '../reports/validate.js';

function img(eye: 'right' | 'left', hash: string): EvidenceImage {
  return { contentHash: hash.repeat(64).slice(0, 64), eye, modality: 'OP', provenance: { fhirRef: `Media/${eye}`, via: 'fhir-attachment' }, gradability: { status: 'gradable', reasons: [] }, bytes: new Uint8Array([1, 2, 3]) };
}

const EVIDENCE: EvidenceBundle = {
  version: 1,
  patient: { conditions: [], visualAcuity: {}, iop: {}, medications: [], notes: [], hba1c: { percent: 8.9, mmolPerMol: 74, reported: { value: 8.9, unit: '%' } } },
  caseText: '[PATIENT CLINICAL PROFILE]\n60-year-old female.',
  images: { right: [img('right', 'a')], left: [img('left', 'b')], unknown: [] },
  problems: [],
  sources: { prefetchUsed: [], fetched: [] },
};

/** Screening all FALSE, ICDR 3 in both eyes; assess-plan steps wait for `release()` and propose routine care. */
function scriptedEngine(opts: { failPlan?: boolean } = {}) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const asked: string[] = [];
  const answer = (id: string, text: string, candidates?: [string, number][]): Answer => ({
    id, text, tokenIds: text.split(' ').map((_, i) => i), stopReason: candidates ? 'single_step' : 'stop_token',
    ...(candidates ? { candidates: candidates.map(([label, probability], tokenId) => ({ label, probability, tokenId })), greedyIsCandidate: true } : {}),
  });
  const engine: VlmEngine = {
    info: { name: 'scripted', version: '1', random: false, manifestSha256: 'f'.repeat(64), executionProvider: 'cpu', dtype: 'fp32' },
    async exam(input: ExamInput) {
      asked.push(...input.questions.map((q) => q.id));
      if (input.questions.some((q) => q.id.startsWith('assess-plan:'))) {
        await gate;
        if (opts.failPlan) throw new Error('worker died');
        return input.questions.map((q) => answer(q.id, q.id === 'assess-plan:5' ? '1. Follow-up care: routine annual review; Justification: stable.' : q.id === 'assess-plan:3' ? '1. Assessment: stable; Plan: annual screening.' : `step ${q.id}`));
      }
      return input.questions.map((q) => (q.id.startsWith('dr-stage') ? answer(q.id, '3', [['0', 0.02], ['1', 0.03], ['2', 0.05], ['3', 0.85], ['4', 0.05]]) : answer(q.id, 'FALSE', [['TRUE', 0.05], ['FALSE', 0.95]])));
    },
    generate: async () => { throw new Error('unused'); },
    status: () => ({ state: 'closed' }),
    close: async () => {},
  };
  return { engine, release: () => release(), asked };
}

function setup(opts: { failPlan?: boolean } = {}) {
  const scripted = scriptedEngine(opts);
  const findings = resolveFindingsConfig({ tasks: { screening: true, drStaging: true, macularHoleStaging: true, description: false, assessPlan: true } });
  const cache = new AnalysisCache({ ttlMs: 60_000, maxEntries: 10 });
  const stage = new InProcessSecondStage({ log: silentLogger() });
  const deps: AssessPlanStageDeps = { stage, engine: scripted.engine, findings, log: silentLogger() };
  const entry = cache.getOrStart('key', 'subject', () => analyseEvidence({ engine: scripted.engine, findings, deferAssessPlan: true }, EVIDENCE, { patientId: 'p1' }), { onStored: (stored) => scheduleAssessPlan(deps, cache, stored, EVIDENCE) });
  return { ...scripted, cache, stage, entry };
}

describe('assessment-and-plan second stage', () => {
  it('the screening result is served while the plan stage runs; the same draft is updated when it finishes', async () => {
    const { entry, cache, stage, release, asked } = setup();
    const first = await entry.promise;
    // Served now, with the rule-derived plan, while the model's steps are still waiting.
    expect(first.assessPlanStage).toEqual({ status: 'pending' });
    expect(first.findings.assessPlan).toEqual([]);
    expect(first.findings.managementPlan.referrals[0]).toMatchObject({ priority: 'urgent', ruleIds: ['dr-icdr3'] });
    expect(first.report.note.text).toContain('Running after the screening result (second stage)');
    expect(first.report.note.text).not.toContain('Assessment and plan: disabled');
    await new Promise((r) => setTimeout(r, 10));
    expect(asked).toContain('assess-plan:1');
    expect(stage.pending(entry.id)).toBe(true);
    expect(cache.latestForPatient('subject').map((d) => d.result.assessPlanStage?.status)).toEqual(['pending']);

    release();
    await stage.idle();
    const updated = cache.get(entry.id)!;
    expect(updated).not.toBe(first);
    expect(updated.assessPlanStage).toMatchObject({ status: 'done' });
    expect(updated.findings.assessPlan.map((s) => s.step)).toEqual([1, 2, 3, 4, 5]);
    expect(updated.timings.assessPlanTokens).toBeGreaterThan(0);
    // Updated, not duplicated: one draft for the patient, under the same id.
    const drafts = cache.latestForPatient('subject');
    expect(drafts.map((d) => d.id)).toEqual([entry.id]);
    expect(drafts[0]!.result).toBe(updated);
    const note = updated.report.note.text;
    expect(note).toContain("VOLMO'S OWN ASSESSMENT AND PLAN (MODEL-GENERATED, UNVERIFIED; CHAINED STEPS)");
    expect(note).toContain('routine annual review');
    // The rule plan is still there, beside the model's, and the disagreement is flagged.
    expect(updated.findings.managementPlan.disagreements).toEqual([expect.objectContaining({ code: 'model-less-urgent', ruleIds: ['dr-icdr3'] })]);
    expect(note).toMatch(/\[model-less-urgent\] VOLMO suggests routine follow-up \("annual"\) while the rules say urgent referral within 3 months/);
    expect(validateReportBundle(updated.report.bundle)).toEqual([]);
  });

  it('a failed stage keeps the screening draft and says so', async () => {
    const { entry, cache, stage, release } = setup({ failPlan: true });
    await entry.promise;
    release();
    await stage.idle();
    const r = cache.get(entry.id)!;
    expect(r.assessPlanStage).toEqual({ status: 'failed', message: 'the model could not complete the assessment-and-plan steps' });
    expect(r.report.note.text).toContain("VOLMO'S OWN ASSESSMENT AND PLAN\n  Not available: the model could not complete");
    expect(r.findings.managementPlan.referrals).toHaveLength(1);
  });

  it('update() refuses an expired entry (the second stage never resurrects a draft)', async () => {
    let now = 0;
    const cache = new AnalysisCache({ ttlMs: 100, maxEntries: 10, now: () => now });
    const e = cache.getOrStart('k', 's', async () => ({ timings: {} }) as never);
    await e.promise;
    now = 1000;
    expect(cache.update(e.id, { timings: {} } as never)).toBe(false);
  });
});

describe('VOLMO_ASSESS_PLAN', () => {
  it('auto: on for GPU execution providers, off on CPU', () => {
    expect(['cpu', 'cuda', 'tensorrt', 'webgpu'].map((ep) => assessPlanEnabled('auto', ep))).toEqual([false, true, true, true]);
    expect(assessPlanEnabled('always', 'cpu')).toBe(true);
    expect(assessPlanEnabled('never', 'cuda')).toBe(false);
  });
  it('is validated with the task list', () => {
    expect(loadConfig({}).assessPlan).toBe('auto');
    expect(() => loadConfig({ VOLMO_ASSESS_PLAN: 'sometimes' })).toThrow(/VOLMO_ASSESS_PLAN/);
    expect(() => loadConfig({ VOLMO_ASSESS_PLAN: 'never', VOLMO_TASKS: 'screening,assess-plan' })).toThrow(/VOLMO_ASSESS_PLAN: is never, but VOLMO_TASKS includes assess-plan/);
  });
});
