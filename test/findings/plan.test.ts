import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { assessPlanPrompt } from '../../src/findings/assess-plan-prompts.js';
import { DEFAULT_FINDINGS_CONFIG, resolveFindingsConfig } from '../../src/findings/config.js';
import { buildConversation, imagePrefix, planTasks } from '../../src/findings/plan.js';
import { CONDITIONS, DESCRIBE_PROMPT, DR_STAGE_PROMPT, MH_STAGE_PROMPT, screeningPrompt } from '../../src/findings/tasks.js';
import { DIABETIC, UNGRADABLE, answersFor, context, image } from './exam-fixtures.js';
import { VOLMO_CASE_1_PROFILE, VOLMO_CASE_1_PROMPT_1 } from './volmo-case.js';

describe('VOLMO prompt wording (verbatim from the volmo data JSONs)', () => {
  it('bool template', () => {
    const dr = CONDITIONS.find((c) => c.id === 'diabetic-retinopathy')!;
    expect(screeningPrompt(dr)).toBe(
      '<image>\nThis is a colorful fundus image. Please tell me whether this image shows diabetic retinopathy. Answer in format: TRUE or FALSE.',
    );
    expect(CONDITIONS.map((c) => c.promptText)).toEqual([
      'age-related macular degeneration (AMD)', 'diabetic retinopathy', 'hypertensive retinopathy', 'increased cup-to-disc ratio',
      'choroidal nevus', 'macular edema', 'myopic fundus changes', 'retinal drusen', 'retinal hemorrhage', 'retinal scarring',
      'retinal vascular occlusion', 'glaucoma',
    ]);
  });
  it('staging, macular hole and description prompts', () => {
    expect(DR_STAGE_PROMPT).toContain('0 - No DR\n1 - Mild\n2 - ModeRate\n3 - Severe\n4 - Proliferative DR\n\nYour response should only contain a single number');
    expect(MH_STAGE_PROMPT.endsWith('Please just use a single number. ')).toBe(true);
    expect(DESCRIBE_PROMPT).toBe('<image>\nWhat is shown in this medical image?');
  });
  it('step 1 reproduces a VOLMO case prompt exactly from its profile sections', () => {
    expect(assessPlanPrompt(1, VOLMO_CASE_1_PROFILE)).toBe(VOLMO_CASE_1_PROMPT_1);
  });
  it('a pre-rendered case text (evidence caseText) is inserted verbatim', () => {
    const block = '[PATIENT CLINICAL PROFILE]\n67-year-old male\n\n[MEDICAL HISTORY]\nType 2 diabetes';
    expect(assessPlanPrompt(1, block)).toContain(`### Input: Clinical Profile ###\n${block}\n\n### Expected Output Format ###`);
    const plan = planTasks(context([image('r1', 'right')], { caseText: block }), DEFAULT_FINDINGS_CONFIG);
    expect(plan.tasks.find((t) => t.key === 'assess-plan:1')!.prompt).toContain(block);
  });
  it('absent profile sections are stated as not reported', () => {
    const p = assessPlanPrompt(1, {});
    expect(p).toContain('[FAMILY HISTORY]\nNo family history reported\n\n[SYMPTOMS]\nNo symptoms reported');
  });
  it('image prefix follows the VOLMO runner', () => {
    expect(imagePrefix(0)).toBe('');
    expect(imagePrefix(1)).toBe('<image>\n');
    expect(imagePrefix(3)).toBe('Image-1: <image>\nImage-2: <image>\nImage-3: <image>\n');
  });
});

describe('planTasks', () => {
  it('runs all tasks on two gradable fundus images', () => {
    const plan = planTasks(DIABETIC, DEFAULT_FINDINGS_CONFIG);
    const count = (k: string) => plan.tasks.filter((t) => t.task.kind === k).length;
    expect([count('screening'), count('dr-stage'), count('mh-stage'), count('describe'), count('assess-plan')]).toEqual([24, 2, 0, 2, 5]);
    expect(new Set(plan.tasks.map((t) => t.key)).size).toBe(plan.tasks.length);
    expect(plan.skipped).toContainEqual({ kind: 'mh-stage', reason: 'no-oct-image' });
  });

  it('asks nothing about an ungradable image', () => {
    const plan = planTasks(UNGRADABLE, DEFAULT_FINDINGS_CONFIG);
    expect(plan.tasks.filter((t) => t.imageIds.includes('l1'))).toEqual([]);
    expect(plan.skipped).toContainEqual({ kind: 'screening', imageId: 'l1', reason: 'ungradable' });
    expect(plan.tasks.filter((t) => t.task.kind === 'dr-stage').map((t) => t.key)).toEqual(['dr-stage:r1']);
  });

  it('no fundus image -> no screening and no DR staging; OCT -> macular-hole staging', () => {
    const plan = planTasks(context([image('o1', 'right', 'OPT')]), DEFAULT_FINDINGS_CONFIG);
    expect(plan.tasks.some((t) => t.task.kind === 'screening' || t.task.kind === 'dr-stage')).toBe(false);
    expect(plan.skipped).toContainEqual({ kind: 'dr-stage', reason: 'no-fundus-image' });
    expect(plan.tasks.filter((t) => t.task.kind === 'mh-stage').map((t) => t.key)).toEqual(['mh-stage:o1']);
  });

  it('only ungradable fundus images -> explicit no-gradable-image skips', () => {
    const plan = planTasks(context([image('x', 'left', 'OP', false, 'blank')]), DEFAULT_FINDINGS_CONFIG);
    expect(plan.tasks.filter((t) => t.task.kind !== 'assess-plan')).toEqual([]);
    expect(plan.skipped).toContainEqual({ kind: 'dr-stage', reason: 'no-gradable-image' });
  });

  it('honours config: disabled tasks and a subset of conditions', () => {
    const cfg = resolveFindingsConfig({ tasks: { description: false, assessPlan: false }, conditions: ['diabetic-retinopathy', 'glaucoma'] });
    const plan = planTasks(DIABETIC, cfg);
    expect(plan.tasks.map((t) => t.key).sort()).toEqual([
      'dr-stage:l1', 'dr-stage:r1', 'screening:diabetic-retinopathy:l1', 'screening:diabetic-retinopathy:r1',
      'screening:glaucoma:l1', 'screening:glaucoma:r1',
    ]);
    expect(plan.skipped).toContainEqual({ kind: 'describe', reason: 'disabled' });
  });

  it("chained history: images go once in step 1, later steps carry the earlier turns", () => {
    const plan = planTasks(DIABETIC, DEFAULT_FINDINGS_CONFIG);
    const steps = plan.tasks.filter((t) => t.task.kind === 'assess-plan');
    expect(steps[0]!.prompt.startsWith('Image-1: <image>\nImage-2: <image>\n#####')).toBe(true);
    expect(steps.slice(1).every((s) => !s.prompt.includes('<image>'))).toBe(true);
    expect(steps[2]!.historyKeys).toEqual(['assess-plan:1', 'assess-plan:2']);
    const answers = answersFor(plan);
    const conv = buildConversation(steps[2]!, plan, answers);
    expect(conv.map((c) => c.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user']);
    expect(conv[1]!.content).toBe('Step 1 answer.');
    expect(conv[4]!.content).toContain('### Task: Provide Clinical Assessment and Plan ###');
  });

  it('independent history (VOLMO evaluation): every step is a single turn with the images', () => {
    const plan = planTasks(DIABETIC, resolveFindingsConfig({ assessPlanHistory: 'independent' }));
    const steps = plan.tasks.filter((t) => t.task.kind === 'assess-plan');
    expect(steps.every((s) => s.historyKeys.length === 0 && s.prompt.startsWith('Image-1: <image>\nImage-2: <image>\n'))).toBe(true);
    expect(buildConversation(steps[4]!, plan, {})).toHaveLength(1);
  });

  it('buildConversation refuses to run a chained step before its history', () => {
    const plan = planTasks(DIABETIC, DEFAULT_FINDINGS_CONFIG);
    const step3 = plan.tasks.find((t) => t.key === 'assess-plan:3')!;
    expect(() => buildConversation(step3, plan, {})).toThrow(AppError);
  });
});

describe('resolveFindingsConfig', () => {
  it('rejects unknown conditions and bad bands with config_invalid', () => {
    expect(() => resolveFindingsConfig({ conditions: ['cataract' as never] })).toThrow(/unknown screening condition/);
    expect(() => resolveFindingsConfig({ screeningBand: { lower: 0.7, upper: 0.3 } })).toThrow(AppError);
    expect(() => resolveFindingsConfig({ referableDrBand: { lower: -1, upper: 0.5 } })).toThrow(/referableDrBand/);
    expect(() => resolveFindingsConfig({ assessPlanHistory: 'both' as never })).toThrow(/assessPlanHistory/);
  });
});
