/**
 * Record text (clinical notes, medication instructions) inside a VOLMO prompt is data, never instructions:
 * it must not be able to close the user turn or open a system/assistant turn (`<|im_end|>`, `<|im_start|>`),
 * add images (`<image>`, `<img>`, `<IMG_CONTEXT>`), or smuggle terminal/bidi control sequences. Pure.
 */

/** Chat-template special tokens of InternLM2/InternVL (`<|...|>`) and InternVL's image/grounding tags, any case. */
const SPECIAL_TOKEN = /<\|[^<>|\n]{0,40}\|>|<\s*\/?\s*(?:s|unk|image|img|IMG_CONTEXT|quad|ref|box)\s*>/giu;
/** ANSI/VT escape sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and other two-byte escapes. */
const ESCAPE = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-_]?/gu;
/** C0/C1 controls except tab and newline, zero-width and bidi formatting characters, BOM. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u200B-\u200F\u2028\u2029\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/gu;

/** Removes control sequences and special tokens, repeatedly, so removing one cannot assemble another. */
export function stripPromptControls(text: string): string {
  let s = text.replace(/\r\n?/g, '\n');
  for (let i = 0; i < 8; i++) {
    const next = s.replace(ESCAPE, '').replace(CONTROL, '').replace(SPECIAL_TOKEN, '');
    if (next === s) break;
    s = next;
  }
  return s;
}

/**
 * Record text as a quotation in a prompt: stripped of control sequences, cut to `maxChars`, every line
 * prefixed with "> " so that it cannot start a heading ("### Task:") or section of the prompt's own.
 */
export function quoteForPrompt(text: string, maxChars: number): string {
  const clean = stripPromptControls(text).trim();
  const cut = clean.length > maxChars ? `${clean.slice(0, maxChars)}…` : clean;
  return cut.split('\n').map((l) => `> ${l}`).join('\n');
}
