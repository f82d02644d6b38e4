import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildVolmoPrompt, DEFAULT_SYSTEM_MESSAGES, expandImages, insertImagePlaceholders, PromptError, renderChat,
} from '../../src/model/prompt.js';
import { loadTokenizer } from '../../src/model/tokenizer/index.js';

const SYS2 = DEFAULT_SYSTEM_MESSAGES['internlm2-chat'];
const Q = '<image>\nThis is a colorful fundus image. Please tell me whether this image shows glaucoma. Answer in format: TRUE or FALSE.';

describe('renderChat', () => {
  it('internlm2-chat: sep <|im_end|> without newline (golden)', () => {
    expect(renderChat('internlm2-chat', 'SYS', [{ role: 'user', content: 'Q?' }], { addGenerationPrompt: true }))
      .toBe('<|im_start|>system\nSYS<|im_end|><|im_start|>user\nQ?<|im_end|><|im_start|>assistant\n');
  });

  it('internvl2_5: sep <|im_end|>\\n (golden)', () => {
    expect(renderChat('internvl2_5', 'SYS', [{ role: 'user', content: 'Q?' }], { addGenerationPrompt: true }))
      .toBe('<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n');
  });

  it('multi-turn history and no generation prompt', () => {
    const turns = [{ role: 'user', content: 'A' }, { role: 'assistant', content: 'B' }, { role: 'user', content: 'C' }] as const;
    expect(renderChat('internlm2-chat', 'S', turns, { addGenerationPrompt: false }))
      .toBe('<|im_start|>system\nS<|im_end|><|im_start|>user\nA<|im_end|><|im_start|>assistant\nB<|im_end|><|im_start|>user\nC<|im_end|>');
  });

  it('default system messages are the exact conversation.py strings', () => {
    expect(SYS2).toContain('大模型\uFF0C英文名叫InternVL, 是');
    expect(SYS2.endsWith('\u3002')).toBe(true);
    expect(DEFAULT_SYSTEM_MESSAGES.internvl2_5.startsWith('你是书生·万象，英文名是InternVL，')).toBe(true);
  });

  it('rejects unknown templates and roles', () => {
    expect(() => renderChat('chatml' as never, 'S', [], { addGenerationPrompt: true })).toThrow(PromptError);
    expect(() => renderChat('internlm2-chat', 'S', [{ role: 'system' as never, content: 'x' }], { addGenerationPrompt: true })).toThrow(PromptError);
  });
});

describe('image placeholders and expansion', () => {
  it('one image without a tag gets <image>\\n in front (chat())', () => {
    expect(insertImagePlaceholders('What is shown in this medical image?', 1)).toBe('<image>\nWhat is shown in this medical image?');
    expect(insertImagePlaceholders(Q, 1)).toBe(Q);
    expect(insertImagePlaceholders('text only', 0)).toBe('text only');
  });

  it('several images without enough tags get Image-i: <image> lines (VOLMO runner)', () => {
    expect(insertImagePlaceholders('Describe.', 3)).toBe('Image-1: <image>\nImage-2: <image>\nImage-3: <image>\nDescribe.');
    expect(insertImagePlaceholders('<image> and <image>', 2)).toBe('<image> and <image>');
  });

  it('expands each <image> to <img> + 256*tiles <IMG_CONTEXT> + </img>, in order', () => {
    const out = expandImages('A <image> B <image> C', [1, 7]);
    expect(out).toBe(`A <img>${'<IMG_CONTEXT>'.repeat(256)}</img> B <img>${'<IMG_CONTEXT>'.repeat(1792)}</img> C`);
    expect(expandImages('x<image>', [2], 4)).toBe(`x<img>${'<IMG_CONTEXT>'.repeat(8)}</img>`);
  });

  it('tag/image count mismatch and bad tile counts are PromptErrors', () => {
    expect(() => expandImages('<image>', [])).toThrow(/1 <image> tags but 0 images/);
    expect(() => expandImages('none', [5])).toThrow(PromptError);
    expect(() => expandImages('<image>', [0])).toThrow(/invalid tile count/);
    expect(() => expandImages('<image>', [1.5])).toThrow(PromptError);
    expect(() => insertImagePlaceholders('x', -1)).toThrow(PromptError);
  });
});

describe('buildVolmoPrompt', () => {
  it('chained follow-up: the images travel once, in the first user turn of the history', () => {
    const history = [
      { role: 'user' as const, content: 'Image-1: <image>\nImage-2: <image>\nWhat is the differential diagnosis?' },
      { role: 'assistant' as const, content: 'AMD or CSC.' },
    ];
    const p = buildVolmoPrompt({ template: 'internlm2-chat', systemMessage: 'S', question: 'What is your diagnosis?', tileCounts: [1, 2], tokensPerTile: 1, history });
    expect(p.text.match(/<img>/g)).toHaveLength(2);
    expect(p.text).toContain('<|im_start|>assistant\nAMD or CSC.<|im_end|>');
    expect(p.text.endsWith('<|im_start|>user\nWhat is your diagnosis?<|im_end|><|im_start|>assistant\n')).toBe(true);
    expect(p.rest).toContain('AMD or CSC.');
  });

  it('single-image screening question (golden)', () => {
    const p = buildVolmoPrompt({ template: 'internlm2-chat', systemMessage: SYS2, question: Q.slice('<image>\n'.length), tileCounts: [5] });
    const img = `<img>${'<IMG_CONTEXT>'.repeat(1280)}</img>`;
    expect(p.text).toBe(`<|im_start|>system\n${SYS2}<|im_end|><|im_start|>user\n${img}\n${Q.slice(8)}<|im_end|><|im_start|>assistant\n`);
    expect(p.prefix + p.rest).toBe(p.text);
    expect(p.prefix.endsWith('</img>')).toBe(true);
  });

  it('text-only question has no prefix; multi-image question gets Image-i lines', () => {
    const t = buildVolmoPrompt({ template: 'internvl2_5', systemMessage: 'S', question: 'Plan?', tileCounts: [] });
    expect(t).toEqual({ text: '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nPlan?<|im_end|>\n<|im_start|>assistant\n', prefix: '', rest: t.text });
    const m = buildVolmoPrompt({ template: 'internlm2-chat', systemMessage: 'S', question: 'Q', tileCounts: [1, 2], tokensPerTile: 1 });
    expect(m.text).toBe('<|im_start|>system\nS<|im_end|><|im_start|>user\nImage-1: <img><IMG_CONTEXT></img>\nImage-2: <img><IMG_CONTEXT><IMG_CONTEXT></img>\nQ<|im_end|><|im_start|>assistant\n');
  });

  it('prefix/rest tokenise to exactly the ids of the whole prompt (BOS once, IMG_CONTEXT count = 256*tiles)', async () => {
    const tok = await loadTokenizer(join(import.meta.dirname, '../../fixtures/models/tiny-tokenizer'));
    const p = buildVolmoPrompt({ template: 'internlm2-chat', systemMessage: SYS2, question: 'What is shown in this medical image?', tileCounts: [7] });
    const whole = tok.encode(p.text);
    expect(whole[0]).toBe(tok.bosId);
    expect(whole.filter((i) => i === tok.bosId)).toHaveLength(1);
    expect([...tok.encode(p.prefix), ...tok.encode(p.rest, { addBos: false })]).toEqual(whole);
    expect(whole.filter((i) => i === tok.tokenId('<IMG_CONTEXT>'))).toHaveLength(1792);
    expect(whole.at(-1)).not.toBe(tok.tokenId('<|im_end|>'));
  });
});
