/**
 * Confidence from answer-token probabilities: normalised over the task's candidate tokens, then
 * compared with a configurable band. Inside the band the call is `indeterminate`.
 */
import type { Band } from './config.js';

export type Call = 'positive' | 'negative' | 'indeterminate';

/** Normalises the runtime's token key: drops a SentencePiece "▁" / whitespace prefix. */
function tokenKey(raw: string, upper: boolean): string {
  const k = raw.replace(/^[\s\u2581]+/u, '').replace(/\s+$/u, '');
  return upper ? k.toUpperCase() : k;
}

/**
 * Probability of each candidate token, normalised to sum 1 over `candidates`. Returns undefined when
 * the runtime gave no probabilities, any value is invalid, or the candidates carry no mass at all.
 */
export function normaliseCandidates(
  raw: Record<string, number> | undefined, candidates: readonly string[],
): Record<string, number> | undefined {
  if (!raw) return undefined;
  const upper = candidates.some((c) => /[A-Z]/.test(c));
  const mass: Record<string, number> = Object.fromEntries(candidates.map((c) => [c, 0]));
  for (const [k, p] of Object.entries(raw)) {
    if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > 1) return undefined;
    const key = tokenKey(k, upper);
    if (key in mass) mass[key] = (mass[key] ?? 0) + p;
  }
  const total = candidates.reduce((s, c) => s + (mass[c] ?? 0), 0);
  if (!(total > 0)) return undefined;
  return Object.fromEntries(candidates.map((c) => [c, (mass[c] ?? 0) / total]));
}

/** positive above band.upper, negative below band.lower, indeterminate in between (inclusive). */
export function callFromProbability(p: number, band: Band): Call {
  if (p > band.upper) return 'positive';
  if (p < band.lower) return 'negative';
  return 'indeterminate';
}

/** P(grade >= minGrade) from a normalised distribution over "0".."4". */
export function probabilityAtLeast(dist: Record<string, number>, minGrade: number): number {
  return Object.entries(dist).reduce((s, [k, p]) => (Number(k) >= minGrade ? s + p : s), 0);
}
