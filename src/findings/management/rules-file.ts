/**
 * A site's override of the plan rule table (VOLMO_PLAN_RULES_FILE), read and checked once at start-up:
 * `{ "rules": [ { "id": "dr-icdr2", "referral": { ... } | null, "followUp": { ... } | null, "text": "...",
 * "thresholds": { ... } }, ... ] }`. Each entry replaces the named fields of the default rule with that id
 * (null removes a referral or follow-up); ids and threshold names must exist. Any problem throws
 * AppError('config_invalid') naming the file, the entry and its line.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { defaultPlanRuleTable, PLAN_SOURCES, type PlanRule, type PlanRuleTable } from './rules.js';

const days = z.number().int().min(1).max(3650);
const referral = z.strictObject({
  to: z.enum(['ophthalmology', 'retina', 'glaucoma', 'eye-care', 'primary-care']),
  withinDays: days,
  priority: z.enum(['routine', 'urgent', 'asap']),
  tests: z.array(z.string().min(1).max(80)).max(10).optional(),
});
const followUp = z.strictObject({
  action: z.enum(['re-screen', 're-examine', 'repeat-imaging', 'clinician-review', 'bp-review', 'glycaemic-review']),
  fromDays: days.optional(),
  withinDays: days,
}).refine((f) => f.fromDays === undefined || f.fromDays <= f.withinDays, 'fromDays must not exceed withinDays');
const entry = z.strictObject({
  id: z.string().min(1),
  text: z.string().min(1).max(300).optional(),
  source: z.string().min(1).optional(),
  referral: referral.nullable().optional(),
  followUp: followUp.nullable().optional(),
  thresholds: z.record(z.string(), z.number().finite()).optional(),
});
const file = z.strictObject({ rules: z.array(z.unknown()).min(1) });

/** 1-based line of character `offset` in `text`. */
function lineAt(text: string, offset: number): number {
  return text.slice(0, Math.max(0, offset)).split('\n').length;
}

/** Line of the `n`-th (0-based) occurrence of `"id": "<id>"`, when it can be found. */
function lineOfId(text: string, id: string, n: number): number | undefined {
  const re = new RegExp(`"id"\\s*:\\s*${JSON.stringify(id).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'g');
  const hits = [...text.matchAll(re)];
  const hit = hits[n];
  return hit?.index === undefined ? undefined : lineAt(text, hit.index);
}

function jsonError(text: string, e: Error): string {
  const pos = /position (\d+)/.exec(e.message);
  return pos ? `line ${lineAt(text, Number(pos[1]))}: ${e.message}` : e.message;
}

/** Applies one checked entry to its default rule; returns the problems found. */
function apply(base: PlanRule, o: z.infer<typeof entry>): { rule: PlanRule; problems: string[] } {
  const problems: string[] = [];
  const rule: PlanRule = { ...base };
  if (o.text !== undefined) rule.text = o.text;
  if (o.source !== undefined) {
    if (PLAN_SOURCES[o.source] === undefined) problems.push(`source: unknown source "${o.source}"; known: ${Object.keys(PLAN_SOURCES).join(', ')}`);
    else rule.source = o.source;
  }
  if (o.referral === null) delete rule.referral;
  else if (o.referral) rule.referral = o.referral;
  if (o.followUp === null) delete rule.followUp;
  else if (o.followUp) rule.followUp = o.followUp;
  if (o.thresholds) {
    const known = Object.keys(base.thresholds ?? {});
    const unknown = Object.keys(o.thresholds).filter((k) => !known.includes(k));
    if (unknown.length) problems.push(`thresholds: unknown name(s) ${unknown.join(', ')}; this rule has ${known.join(', ') || 'none'}`);
    else rule.thresholds = { ...base.thresholds, ...o.thresholds };
  }
  if (!rule.referral && !rule.followUp) problems.push('a rule needs a referral or a follow-up (to drop a rule\'s action, change it instead)');
  return { rule, problems };
}

/** Parses and checks the text of an override file; `name` is how errors refer to it. */
export function parsePlanRules(text: string, name: string): PlanRuleTable {
  const fail = (msg: string): never => {
    throw new AppError('config_invalid', `VOLMO_PLAN_RULES_FILE ${name}: ${msg}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return fail(`not valid JSON: ${jsonError(text, e as Error)}`);
  }
  const top = file.safeParse(raw);
  if (!top.success) return fail(`must be an object {"rules": [ ... ]} with at least one rule (${top.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')})`);
  const defaults = defaultPlanRuleTable().rules;
  const rules: Record<string, PlanRule> = { ...defaults };
  const problems: string[] = [];
  const seen = new Map<string, number>();
  top.data.rules.forEach((value, i) => {
    const id = typeof (value as { id?: unknown })?.id === 'string' ? (value as { id: string }).id : undefined;
    const n = id === undefined ? 0 : (seen.get(id) ?? 0);
    if (id !== undefined) seen.set(id, n + 1);
    const line = id === undefined ? undefined : lineOfId(text, id, n);
    const where = `rules[${i}]${id ? ` (id "${id}"${line ? `, line ${line}` : ''})` : ''}`;
    const parsed = entry.safeParse(value);
    if (!parsed.success) {
      problems.push(...parsed.error.issues.map((iss) => `${where}: ${iss.path.join('.') || '(entry)'}: ${iss.message}`));
      return;
    }
    if (n > 0) problems.push(`${where}: the same id appears more than once`);
    const base = defaults[parsed.data.id];
    if (!base) {
      problems.push(`${where}: unknown rule id; known ids: ${Object.keys(defaults).join(', ')}`);
      return;
    }
    const applied = apply(base, parsed.data);
    problems.push(...applied.problems.map((p) => `${where}: ${p}`));
    rules[base.id] = applied.rule;
  });
  if (problems.length) fail(`\n  - ${problems.join('\n  - ')}`);
  const sha = createHash('sha256').update(text).digest('hex').slice(0, 12);
  return { version: `${defaultPlanRuleTable().version}+site:${sha}`, rules };
}
