import { describe, expect, it } from 'vitest';
import { parseBooleanAnswer, parseDigitAnswer } from '../../src/findings/parse.js';

/** Short test names for long inputs. */
const show = (s: string) => (s.length > 40 ? `${JSON.stringify(s.slice(0, 30))}… (${s.length} chars)` : JSON.stringify(s));

const LONG_TAIL = ' The fundus shows scattered microaneurysms.'.repeat(5000);

describe('parseBooleanAnswer', () => {
  it.each([
    // VOLMO's own GT vocabulary
    ['TRUE.', true],
    ['FALSE.', false],
    ['TRUE', true],
    ['FALSE', false],
    // leading token decides
    ['TRUE. However, the image quality is limited.', true],
    ['FALSE - no lesions are visible', false],
    ['true', true],
    ['False.', false],
    ['  \n\tTRUE', true],
    ['**TRUE**', true],
    ['`FALSE`', false],
    ['## TRUE', true],
    ['> FALSE.', false],
    ['- TRUE', true],
    ['"TRUE"', true],
    ['TRUE。这张图片显示糖尿病视网膜病变', true],
    ['Yes', true],
    ['TRUE, but no haemorrhage is visible', true],
    ['FALSE. It is not TRUE that the disc is cupped.', false],
    ['NO.', false],
    ['TRUE' + LONG_TAIL, true],
  ].map(([t, v]) => [`${show(t as string)} -> ${String(v)}`, t, v] as [string, string, boolean]))('%s', (_n, text, value) => {
    expect(parseBooleanAnswer(text)).toEqual({ kind: 'boolean', value });
  });

  it.each([
    ['', 'empty'],
    ['   \n ', 'empty'],
    ['**', 'empty'],
    ['Not applicable', 'no-leading-answer'],
    ['Normal fundus', 'no-leading-answer'],
    ['Nonproliferative changes are seen', 'no-leading-answer'],
    ['The answer is TRUE', 'no-leading-answer'],
    ['Answer: TRUE', 'no-leading-answer'],
    ['是', 'no-leading-answer'],
    ['这张图片显示糖尿病视网膜病变。', 'no-leading-answer'],
    ['TRUEISH', 'no-leading-answer'],
    ['1', 'no-leading-answer'],
    ['TRUE or FALSE', 'ambiguous'],
    ['TRUE/FALSE', 'ambiguous'],
    ['FALSE or TRUE', 'ambiguous'],
    ['TRUE or maybe FALSE', 'ambiguous'],
    ['Yes/No', 'ambiguous'],
    ['true or false.', 'ambiguous'],
    ['The image shows' + LONG_TAIL, 'no-leading-answer'],
  ].map(([t, r]) => [`${show(t as string)} -> unparseable (${String(r)})`, t, r] as [string, string, string]))('%s', (_n, text, reason) => {
    expect(parseBooleanAnswer(text)).toEqual({ kind: 'unparseable', reason });
  });

  it('handles a very long answer quickly (no catastrophic backtracking)', () => {
    const text = ' '.repeat(100_000) + 'x'.repeat(100_000);
    const t0 = performance.now();
    expect(parseBooleanAnswer(text).kind).toBe('unparseable');
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

const DR = [0, 1, 2, 3, 4];

describe('parseDigitAnswer (ICDR 0-4)', () => {
  it.each([
    ['0', 0], ['1', 1], ['2', 2], ['3', 3], ['4', 4],
    ['2.', 2],
    ['3\n', 3],
    [' 4', 4],
    ['**2**', 2],
    ['2 - ModeRate', 2],
    ['0 - No DR', 0],
    ['3 (Severe)', 3],
    ['1) Mild', 1],
    ['2。', 2],
    ['4' + LONG_TAIL, 4],
  ].map(([t, v]) => [`${show(t as string)} -> ${String(v)}`, t, v] as [string, string, number]))('%s', (_n, text, value) => {
    expect(parseDigitAnswer(text, DR)).toEqual({ kind: 'digit', value });
  });

  it.each([
    ['', 'empty'],
    ['Grade: 2', 'no-leading-answer'],
    ['Moderate', 'no-leading-answer'],
    ['Not applicable', 'no-leading-answer'],
    ['The rating is 2', 'no-leading-answer'],
    ['二', 'no-leading-answer'],
    ['TRUE', 'no-leading-answer'],
    ['-1', 'no-leading-answer'],
    ['2.5', 'no-leading-answer'],
    ['23', 'no-leading-answer'],
    ['2nd', 'no-leading-answer'],
    ['2 or 3', 'ambiguous'],
    ['2-3', 'ambiguous'],
    ['2/3', 'ambiguous'],
    ['2 to 3', 'ambiguous'],
    ['5', 'out-of-vocabulary'],
    ['9', 'out-of-vocabulary'],
  ].map(([t, r]) => [`${show(t as string)} -> unparseable (${String(r)})`, t, r] as [string, string, string]))('%s', (_n, text, reason) => {
    expect(parseDigitAnswer(text, DR)).toEqual({ kind: 'unparseable', reason });
  });

  it("uses the task's vocabulary: macular-hole stages are 2, 3, 4 only", () => {
    expect(parseDigitAnswer('3', [2, 3, 4])).toEqual({ kind: 'digit', value: 3 });
    expect(parseDigitAnswer('1', [2, 3, 4])).toEqual({ kind: 'unparseable', reason: 'out-of-vocabulary' });
    expect(parseDigitAnswer('0', [2, 3, 4])).toEqual({ kind: 'unparseable', reason: 'out-of-vocabulary' });
  });
});
