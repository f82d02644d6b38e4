/**
 * Strict answer parsing. The leading answer token decides; anything else is `unparseable` and is
 * never guessed. Deliberately unlike VOLMO's evaluators (volmo core/evaluators/*), whose substring
 * rules read "not"/"normal"/"nonproliferative" as "no" and pick any digit anywhere in the text.
 */

/**
 * 'not-a-candidate': the runtime scored the candidates in one step, but the model's own greedy first
 * token was none of them (it would have answered something else); 'no-answer': the runtime returned
 * nothing for the question.
 */
export type UnparseableReason = 'empty' | 'no-leading-answer' | 'ambiguous' | 'out-of-vocabulary' | 'not-a-candidate' | 'no-answer';

export type ParsedBoolean = { kind: 'boolean'; value: boolean } | { kind: 'unparseable'; reason: UnparseableReason };
export type ParsedDigit = { kind: 'digit'; value: number } | { kind: 'unparseable'; reason: UnparseableReason };

/**
 * Strips what may precede the answer without changing it: whitespace (incl. full-width), markdown
 * emphasis/heading/quote/code markers, list bullets ("- ", "* "), and quotes.
 */
export function stripLeadingDecoration(text: string): string {
  let s = text;
  for (let i = 0; i < 8; i += 1) {
    const next = s
      .replace(/^[\s\u3000\uFEFF]+/u, '')
      .replace(/^(?:\*\*|__|\*|_|`{1,3}|#{1,6}\s|>\s?|[-•]\s+|["'“‘(\[])/u, '');
    if (next === s) break;
    s = next;
  }
  return s;
}

/** Digit alternatives and ranges: "2 or 3", "2/3", "2-3", "2–3", "2 to 3". */
const RANGE = /^[\s*_`"')\].,]*(?:or\b|\/|-|–|to\b)\s*(.*)$/isu;

/** After the leading token: does the answer offer alternatives? */
function offersAlternative(rest: string, separator: RegExp, token: RegExp): boolean {
  const m = separator.exec(rest);
  return m !== null && token.test(stripLeadingDecoration(m[1] ?? ''));
}

const BOOL_RE = /^(TRUE|FALSE|YES|NO)(?![\p{L}\p{N}_])/iu;
const OPPOSITE: Record<string, RegExp> = {
  TRUE: /(?<![\p{L}\p{N}_])FALSE(?![\p{L}\p{N}_])/iu,
  FALSE: /(?<![\p{L}\p{N}_])TRUE(?![\p{L}\p{N}_])/iu,
  YES: /(?<![\p{L}\p{N}_])NO(?![\p{L}\p{N}_])/iu,
  NO: /(?<![\p{L}\p{N}_])YES(?![\p{L}\p{N}_])/iu,
};

/** The rest of the first clause, up to a sentence end or line break (bounded). */
function firstClause(rest: string): string {
  const head = rest.slice(0, 400);
  const end = head.search(/[.。!！?？;；\n]/u);
  return end < 0 ? head : head.slice(0, end);
}

/** TRUE/FALSE (VOLMO's vocabulary) and YES/NO, case-insensitive, as the first word only. */
export function parseBooleanAnswer(text: string): ParsedBoolean {
  const s = stripLeadingDecoration(text ?? '');
  if (s.length === 0) return { kind: 'unparseable', reason: 'empty' };
  const m = BOOL_RE.exec(s);
  if (!m) return { kind: 'unparseable', reason: 'no-leading-answer' };
  const rest = s.slice(m[0].length);
  const word = m[1]!.toUpperCase();
  // "TRUE or FALSE", "TRUE/FALSE", "TRUE or maybe FALSE": the first clause also names the opposite answer.
  if (OPPOSITE[word]!.test(firstClause(rest))) return { kind: 'unparseable', reason: 'ambiguous' };
  return { kind: 'boolean', value: word === 'TRUE' || word === 'YES' };
}

/** A single ASCII digit not followed by another digit or a decimal part. */
const DIGIT_RE = /^([0-9])(?![0-9]|[.,][0-9]|[\p{L}_])/u;
const DIGIT_TOKEN = /^[0-9]/u;

/** A single leading digit within `allowed`; "Grade: 2", "2.5", "23", "2 or 3" are unparseable. */
export function parseDigitAnswer(text: string, allowed: readonly number[]): ParsedDigit {
  const s = stripLeadingDecoration(text ?? '');
  if (s.length === 0) return { kind: 'unparseable', reason: 'empty' };
  const m = DIGIT_RE.exec(s);
  if (!m) return { kind: 'unparseable', reason: 'no-leading-answer' };
  if (offersAlternative(s.slice(1), RANGE, DIGIT_TOKEN)) return { kind: 'unparseable', reason: 'ambiguous' };
  const value = Number(m[1]);
  if (!allowed.includes(value)) return { kind: 'unparseable', reason: 'out-of-vocabulary' };
  return { kind: 'digit', value };
}
