/**
 * The management-plan rule table: every ICDR level with and without macular edema gives the ICO 2017
 * interval/referral, each other condition its documented action, measurements change the rules that
 * depend on them, and a site's override file changes the table (or stops start-up when it is bad).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { aggregateFindings } from '../../src/findings/aggregate.js';
import { DEFAULT_FINDINGS_CONFIG, type FindingsConfig } from '../../src/findings/config.js';
import { formatInterval } from '../../src/findings/management/format.js';
import { parsePlanRules } from '../../src/findings/management/rules-file.js';
import { planTasks } from '../../src/findings/plan.js';
import type { ClinicalFacts, ExamContext, ModelAnswer } from '../../src/findings/types.js';
import { DIABETIC, TRUE_ANSWER, UNGRADABLE, answersFor, context, gradeAnswer, image } from './exam-fixtures.js';

function planFor(ctx: ExamContext, overrides: Record<string, ModelAnswer>, facts?: ClinicalFacts, config: FindingsConfig = DEFAULT_FINDINGS_CONFIG) {
  const c = { ...ctx, ...(facts ? { facts } : {}) };
  const plan = planTasks(c, config);
  return aggregateFindings(c, plan, answersFor(plan, overrides), config).managementPlan;
}
const rightLines = (p: ReturnType<typeof planFor>) => p.lines.filter((l) => l.scope === 'right');

/**
 * ICO Guidelines for Diabetic Eye Care (2017), re-examination/referral table, high-resource setting, written
 * out here from the published table (not from the rule module): re-examination interval in days and whether
 * referral is required. Macular edema rows: centre-involving DME, 1 month, referral required (VOLMO cannot
 * tell centre involvement).
 */
const ICO_2017 = [
  { grade: 0, reExam: [365, 730], referral: false },
  { grade: 1, reExam: [180, 365], referral: false },
  { grade: 2, reExam: [90, 180], referral: true },
  { grade: 3, reExam: [undefined, 90], referral: true },
  { grade: 4, reExam: [undefined, 30], referral: true },
] as const;

describe('DR rules follow the ICO 2017 table', () => {
  for (const row of ICO_2017) {
    it(`ICDR ${row.grade} without macular edema`, () => {
      const plan = planFor(DIABETIC, { 'dr-stage:r1': gradeAnswer(row.grade, 0.9) });
      const [line] = rightLines(plan);
      expect(line!.ruleId).toBe(`dr-icdr${row.grade}`);
      expect([line!.followUp?.fromDays, line!.followUp?.withinDays]).toEqual(row.reExam);
      expect(line!.referral !== undefined).toBe(row.referral);
      if (row.referral) expect(line!.referral!.withinDays).toBeLessThanOrEqual(row.reExam[1]);
      expect(line!.source).toBe('ico2017');
      expect(line!.findingKeys).toEqual(['dr:right']);
    });
    it(`ICDR ${row.grade} with macular edema: referral within 1 month`, () => {
      const plan = planFor(DIABETIC, { 'dr-stage:r1': gradeAnswer(row.grade, 0.9), 'screening:macular-edema:r1': TRUE_ANSWER(0.9) });
      const line = rightLines(plan).find((l) => l.ruleId.startsWith('dr-'))!;
      expect(line.ruleId).toBe(`dr-icdr${row.grade}-me`);
      expect(line.referral).toMatchObject({ to: 'retina', withinDays: 30, priority: 'urgent' });
      expect(line.followUp?.withinDays).toBe(30);
      expect(line.findingKeys).toEqual(['dr:right', 'screening:right:macular-edema']);
    });
  }

  it('the published wording of the intervals', () => {
    expect(formatInterval(365, 730)).toBe('in 12–24 months');
    expect(formatInterval(180, 365)).toBe('in 6–12 months');
    expect(formatInterval(90, 180)).toBe('in 3–6 months');
    expect(formatInterval(undefined, 30)).toBe('within 1 month');
  });

  it('worst eye decides the patient-level referral; both eyes keep their lines', () => {
    const plan = planFor(DIABETIC, { 'dr-stage:r1': gradeAnswer(2, 0.9), 'dr-stage:l1': gradeAnswer(4, 0.9) });
    expect(plan.lines.map((l) => `${l.scope}:${l.ruleId}`)).toEqual(['right:dr-icdr2', 'left:dr-icdr4']);
    expect(plan.referrals).toEqual([expect.objectContaining({ to: 'retina', withinDays: 30, priority: 'urgent', ruleIds: ['dr-icdr2', 'dr-icdr4'], scopes: ['right', 'left'] })]);
    expect(plan.followUps[0]).toMatchObject({ action: 're-examine', withinDays: 30 });
  });

  it('ICDR below 2 with a referable probability: treated as referable until graded', () => {
    const plan = planFor(DIABETIC, { 'dr-stage:r1': { text: '1', candidates: { 0: 0.05, 1: 0.45, 2: 0.4, 3: 0.05, 4: 0.05 } } });
    expect(rightLines(plan).map((l) => l.ruleId)).toEqual(['dr-icdr1', 'dr-referable-uncertain']);
  });
});

/** Each other condition: positive on the right eye -> its rule and documented action. */
const CONDITION_RULES: [string, string, Record<string, unknown>][] = [
  ['amd', 'amd', { referral: { to: 'retina', withinDays: 90, priority: 'routine' } }],
  ['retinal-drusen', 'retinal-drusen', { followUp: { action: 're-examine', fromDays: 180, withinDays: 365 } }],
  ['increased-cup-to-disc-ratio', 'glaucoma-suspect', { referral: { to: 'glaucoma', withinDays: 90, tests: ['IOP', 'gonioscopy', 'visual fields', 'OCT of the nerve fibre layer'] } }],
  ['glaucoma', 'glaucoma-suspect', { referral: { to: 'glaucoma' } }],
  ['retinal-vascular-occlusion', 'retinal-vascular-occlusion', { referral: { to: 'ophthalmology', withinDays: 7, priority: 'urgent' } }],
  ['retinal-hemorrhage', 'retinal-hemorrhage', { referral: { to: 'ophthalmology', withinDays: 30 } }],
  ['choroidal-nevus', 'choroidal-nevus', { referral: { to: 'eye-care', withinDays: 90 }, followUp: { fromDays: 180, withinDays: 365 } }],
  ['myopic-fundus-changes', 'myopic-fundus-changes', { referral: { to: 'ophthalmology', withinDays: 90 } }],
  ['retinal-scarring', 'retinal-scarring', { referral: { to: 'ophthalmology', withinDays: 90 } }],
  ['diabetic-retinopathy', 'dr-unstaged', { referral: { to: 'ophthalmology', withinDays: 90 } }],
];

describe('other VOLMO conditions', () => {
  const noStaging: FindingsConfig = { ...DEFAULT_FINDINGS_CONFIG, tasks: { ...DEFAULT_FINDINGS_CONFIG.tasks, drStaging: false } };
  it.each(CONDITION_RULES)('%s -> rule %s', (condition, ruleId, action) => {
    const plan = planFor(DIABETIC, { [`screening:${condition}:r1`]: TRUE_ANSWER(0.9) }, undefined, noStaging);
    const line = rightLines(plan).find((l) => l.ruleId === ruleId);
    expect(line, JSON.stringify(plan.lines)).toMatchObject({ ruleId, ...action });
    expect(line!.findingKeys).toContain(`screening:right:${condition}`);
  });

  it('hypertensive retinopathy: blood-pressure review with the primary clinician; same day when BP > 180/120', () => {
    const pos = { 'screening:hypertensive-retinopathy:r1': TRUE_ANSWER(0.9) };
    const normal = planFor(DIABETIC, pos, { bloodPressure: { systolicMmHg: 150, diastolicMmHg: 95 } });
    expect(normal.lines.find((l) => l.scope === 'patient')).toMatchObject({ ruleId: 'hypertensive-retinopathy', followUp: { action: 'bp-review', withinDays: 30 }, basis: ['blood pressure 150/95 mmHg'] });
    const severe = planFor(DIABETIC, pos, { bloodPressure: { systolicMmHg: 192, diastolicMmHg: 110 } });
    expect(severe.lines.find((l) => l.scope === 'patient')).toMatchObject({ ruleId: 'hypertensive-retinopathy-severe-bp', referral: { to: 'primary-care', withinDays: 1, priority: 'asap' } });
  });

  it('glaucoma suspect with IOP >= 24 mmHg (NICE NG81) is referred sooner; IOP is named either way', () => {
    const pos = { 'screening:increased-cup-to-disc-ratio:r1': TRUE_ANSWER(0.9) };
    expect(rightLines(planFor(DIABETIC, pos, { iopMmHg: { right: 26 } })).find((l) => l.ruleId.startsWith('glaucoma'))).toMatchObject({ ruleId: 'glaucoma-suspect-high-iop', referral: { withinDays: 30 }, basis: expect.arrayContaining(['IOP 26 mmHg']) });
    expect(rightLines(planFor(DIABETIC, pos, { iopMmHg: { left: 30 } })).find((l) => l.ruleId.startsWith('glaucoma'))!.basis).toContain('IOP not documented');
  });

  it('AMD with reduced visual acuity (logMAR >= 0.3) is an urgent macular referral', () => {
    const line = rightLines(planFor(DIABETIC, { 'screening:amd:r1': TRUE_ANSWER(0.9) }, { logMar: { right: 0.5 } })).find((l) => l.ruleId.startsWith('amd'));
    expect(line).toMatchObject({ ruleId: 'amd-reduced-vision', referral: { withinDays: 14, priority: 'urgent' } });
  });

  it('diabetic findings with HbA1c >= 7%: send to the clinician managing diabetes (CMS142)', () => {
    const plan = planFor(DIABETIC, { 'dr-stage:r1': gradeAnswer(2, 0.9) }, { hba1cPercent: 8.9 });
    expect(plan.lines.find((l) => l.scope === 'patient')).toMatchObject({ ruleId: 'glycaemic-review', basis: ['HbA1c 8.9%'], findingKeys: ['dr:right'] });
    expect(planFor(DIABETIC, { 'dr-stage:r1': gradeAnswer(2, 0.9) }, { hba1cPercent: 6.4 }).lines.some((l) => l.ruleId === 'glycaemic-review')).toBe(false);
  });

  it('macular hole stage on OCT: retina referral', () => {
    const plan = planFor(context([image('o1', 'right', 'OPT')]), {});
    expect(rightLines(plan)).toEqual([expect.objectContaining({ ruleId: 'macular-hole', referral: expect.objectContaining({ to: 'retina', withinDays: 30 }), findingKeys: ['mh:right'] })]);
  });

  it('ungradable images: repeat imaging; indeterminate answers: clinician grading', () => {
    const plan = planFor(UNGRADABLE, { 'screening:glaucoma:r1': { text: 'TRUE', candidates: { TRUE: 0.5, FALSE: 0.5 } } });
    expect(plan.lines.find((l) => l.scope === 'left')).toMatchObject({ ruleId: 'ungradable', followUp: { action: 'repeat-imaging', withinDays: 30 }, basis: ['out of focus; media opacity'] });
    expect(rightLines(plan).find((l) => l.ruleId === 'indeterminate')).toMatchObject({ followUp: { action: 'clinician-review' }, basis: ['glaucoma: indeterminate'] });
  });

  it('everything negative without DR staging: re-screen', () => {
    const noStaging: FindingsConfig = { ...DEFAULT_FINDINGS_CONFIG, tasks: { ...DEFAULT_FINDINGS_CONFIG.tasks, drStaging: false } };
    expect(planFor(DIABETIC, {}, undefined, noStaging).lines.map((l) => l.ruleId)).toEqual(['no-referable-finding']);
  });
});

describe('site override file (VOLMO_PLAN_RULES_FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'volmo-plan-rules-'));
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('an override changes the interval, the action and the rule-table version', () => {
    const table = parsePlanRules(JSON.stringify({ rules: [{ id: 'dr-icdr1', followUp: { action: 're-screen', fromDays: 365, withinDays: 365 } }, { id: 'dr-icdr2', referral: { to: 'ophthalmology', withinDays: 60, priority: 'routine' } }] }, null, 2), 'site.json');
    const config = { ...DEFAULT_FINDINGS_CONFIG, planRules: table };
    const one = planFor(DIABETIC, { 'dr-stage:r1': gradeAnswer(1, 0.9) }, undefined, config);
    expect(rightLines(one)[0]).toMatchObject({ ruleId: 'dr-icdr1', followUp: { action: 're-screen', withinDays: 365 } });
    expect(rightLines(one)[0]!.text).toMatch(/^Retinal screening again in 12 months/);
    const two = planFor(DIABETIC, { 'dr-stage:r1': gradeAnswer(2, 0.9) }, undefined, config);
    expect(rightLines(two)[0]).toMatchObject({ referral: { to: 'ophthalmology', withinDays: 60 }, followUp: { withinDays: 180 } });
    expect(two.rulesVersion).toMatch(/^volmo-plan-rules\/1\.0\.0\+site:[0-9a-f]{12}$/);
  });

  it('loadConfig reads the file at start-up', () => {
    const file = write('ok.json', JSON.stringify({ rules: [{ id: 'retinal-scarring', referral: { to: 'retina', withinDays: 45, priority: 'routine' } }] }));
    expect(loadConfig({ VOLMO_PLAN_RULES_FILE: file }).planRules.rules['retinal-scarring']!.referral).toEqual({ to: 'retina', withinDays: 45, priority: 'routine' });
  });

  const BAD: [string, string, RegExp][] = [
    ['unknown id', '{\n  "rules": [\n    { "id": "dr-icdr2", "text": "x" },\n    { "id": "dr-icdr9", "text": "y" }\n  ]\n}', /rules\[1\] \(id "dr-icdr9", line 4\): unknown rule id/],
    ['bad interval', '{\n  "rules": [\n    {\n      "id": "dr-icdr0",\n      "followUp": { "action": "re-screen", "withinDays": -3 }\n    }\n  ]\n}', /rules\[0\] \(id "dr-icdr0", line 4\): followUp\.withinDays/],
    ['unknown field', '{ "rules": [ { "id": "amd", "refferal": {} } ] }', /rules\[0\] \(id "amd", line 1\): \(entry\): Unrecognized key/],
    ['unknown threshold', '{ "rules": [ { "id": "glaucoma-suspect-high-iop", "thresholds": { "iop": 21 } } ] }', /thresholds: unknown name\(s\) iop; this rule has iopMmHgAtLeast/],
    ['no action left', '{ "rules": [ { "id": "retinal-scarring", "referral": null } ] }', /rules\[0\] \(id "retinal-scarring", line 1\): a rule needs a referral or a follow-up/],
    ['not JSON', '{\n  "rules": [\n    { "id": "amd", }\n  ]\n}', /not valid JSON: line 3/],
    ['no rules', '{ "rule": [] }', /must be an object \{"rules": \[ \.\.\. \]\}/],
  ];
  it.each(BAD)('a bad file stops start-up naming the entry at fault: %s', (_name, text, message) => {
    const file = write(`bad-${_name.replace(/\W/g, '-')}.json`, text);
    let err: unknown;
    try {
      loadConfig({ VOLMO_PLAN_RULES_FILE: file });
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string })?.code).toBe('config_invalid');
    expect((err as Error).message).toContain(`VOLMO_PLAN_RULES_FILE ${file}`);
    expect((err as Error).message).toMatch(message);
  });

  it('a missing file stops start-up', () => {
    expect(() => loadConfig({ VOLMO_PLAN_RULES_FILE: join(dir, 'nope.json') })).toThrow(/VOLMO_PLAN_RULES_FILE: cannot read/);
  });
});
