/**
 * Configuration of the findings layer: which tasks run, history mode, thresholds, referral triggers.
 * Defaults are documented in docs/clinical-logic.md; the numeric thresholds are placeholders that a
 * deployment must calibrate locally (VOLMO published no calibration data).
 */
import { AppError } from '../errors.js';
import { defaultPlanRuleTable, type PlanRuleTable } from './management/rules.js';
import { CONDITIONS, type ConditionId } from './tasks.js';

/** A probability cut-off pair: value > upper -> positive, value < lower -> negative, else indeterminate. */
export interface Band {
  lower: number;
  upper: number;
}

export interface FindingsConfig {
  tasks: {
    screening: boolean;
    drStaging: boolean;
    macularHoleStaging: boolean;
    description: boolean;
    assessPlan: boolean;
  };
  conditions: readonly ConditionId[];
  /**
   * 'chained': steps 2–5 see earlier questions and answers as conversation history (the prompts say
   * "your diagnosis", "your assessment"). 'independent': each step is a single turn, as in VOLMO's
   * own evaluation (inference_runner.py); use it to reproduce published numbers.
   */
  assessPlanHistory: 'chained' | 'independent';
  /** P(TRUE) band for the 12 screening questions. */
  screeningBand: Band;
  /** P(ICDR grade >= 2) band for "referable DR". */
  referableDrBand: Band;
  /** Per-condition P(TRUE) bands (a site's operating points, site-thresholds.ts); unnamed conditions use screeningBand. */
  conditionBands?: Partial<Record<ConditionId, Band>>;
  /** Ungradable images count as a referral trigger (as autonomous DR systems do). */
  ungradableRefers: boolean;
  /** Emit LOINC 105914-6 (autonomous-AI DR screening result) where it applies. */
  emitAutonomousScreeningCode: boolean;
  /** The management-plan rule table (defaults, or a site's VOLMO_PLAN_RULES_FILE). */
  planRules: PlanRuleTable;
}

export const DEFAULT_FINDINGS_CONFIG: FindingsConfig = Object.freeze({
  tasks: Object.freeze({ screening: true, drStaging: true, macularHoleStaging: true, description: true, assessPlan: true }),
  conditions: Object.freeze(CONDITIONS.map((c) => c.id)),
  assessPlanHistory: 'chained',
  screeningBand: Object.freeze({ lower: 0.35, upper: 0.65 }),
  referableDrBand: Object.freeze({ lower: 0.2, upper: 0.5 }),
  ungradableRefers: true,
  emitAutonomousScreeningCode: true,
  planRules: defaultPlanRuleTable(),
}) as FindingsConfig;

export interface FindingsConfigOverrides {
  tasks?: Partial<FindingsConfig['tasks']>;
  conditions?: readonly ConditionId[];
  assessPlanHistory?: FindingsConfig['assessPlanHistory'];
  screeningBand?: Band;
  referableDrBand?: Band;
  conditionBands?: Partial<Record<ConditionId, Band>>;
  ungradableRefers?: boolean;
  emitAutonomousScreeningCode?: boolean;
  planRules?: PlanRuleTable;
}

function checkBand(name: string, b: Band): void {
  const ok = Number.isFinite(b.lower) && Number.isFinite(b.upper) && b.lower >= 0 && b.upper <= 1 && b.lower <= b.upper;
  if (!ok) throw new AppError('config_invalid', `${name} must satisfy 0 <= lower <= upper <= 1`);
}

/** Merges overrides onto the defaults and checks them; throws AppError('config_invalid'). */
export function resolveFindingsConfig(overrides: FindingsConfigOverrides = {}): FindingsConfig {
  const cfg: FindingsConfig = {
    ...DEFAULT_FINDINGS_CONFIG,
    ...overrides,
    tasks: { ...DEFAULT_FINDINGS_CONFIG.tasks, ...overrides.tasks },
  } as FindingsConfig;
  const known = new Set<string>(CONDITIONS.map((c) => c.id));
  const unknown = cfg.conditions.filter((c) => !known.has(c));
  if (unknown.length > 0) throw new AppError('config_invalid', `unknown screening condition(s): ${unknown.join(', ')}`);
  if (cfg.assessPlanHistory !== 'chained' && cfg.assessPlanHistory !== 'independent') {
    throw new AppError('config_invalid', "assessPlanHistory must be 'chained' or 'independent'");
  }
  checkBand('screeningBand', cfg.screeningBand);
  checkBand('referableDrBand', cfg.referableDrBand);
  for (const [c, b] of Object.entries(cfg.conditionBands ?? {})) {
    if (!known.has(c)) throw new AppError('config_invalid', `conditionBands: unknown screening condition ${c}`);
    checkBand(`conditionBands.${c}`, b);
  }
  return cfg;
}
