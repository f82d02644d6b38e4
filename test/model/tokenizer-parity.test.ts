/**
 * Parity of the converted tokenizer.json (run by @huggingface/tokenizers) with real SentencePiece.
 * Reference ids: scripts/tokenizer/reference_ids.py (python3-sentencepiece 0.1.97, slow-tokenizer semantics:
 * added tokens split out first, each other segment sp.encode()d).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertTokenizer, Tokenizer } from '../../src/model/tokenizer/index.js';

const DIR = join(import.meta.dirname, '../../fixtures/models/tiny-tokenizer');

interface RefCase { name: string; text: string; ids: number[]; pieces: string[]; spDecoded: string }
interface Ref { meta: { pieceSize: number; bos: number; eos: number; unk: number }; cases: RefCase[] }

function load(dir: string): { tok: Tokenizer; ref: Ref; special: Record<string, number> } {
  const c = convertTokenizer(dir);
  const ref = JSON.parse(readFileSync(join(dir, 'reference-ids.json'), 'utf8')) as Ref;
  return { tok: new Tokenizer(c.tokenizerJson, c.tokenizerConfig), ref, special: c.specialTokens };
}

const main = load(DIR);
const SPECIALS = Object.keys(main.special);
const hasSpecial = (t: string): boolean => SPECIALS.some((s) => t.includes(s));

describe('tokenizer parity with SentencePiece (add_dummy_prefix=true)', () => {
  it('covers the VOLMO prompts, system messages, accents, digits, emoji and every special token', () => {
    const names = main.ref.cases.map((c) => c.name);
    for (const n of ['bool: glaucoma', 'stage: DR grading', 'stage: macular hole (trailing space)', 'imgdesc', 'assessplan',
      'system message internvl2', 'system message internvl2.5', 'chat internlm2-chat', 'chat internvl2_5', 'accents',
      'digits', 'emoji', 'special tokens alone']) expect(names).toContain(n);
    expect(main.ref.cases.length).toBeGreaterThan(100);
    const emoji = main.ref.cases.find((c) => c.name === 'emoji')!;
    expect(emoji.pieces).toContain('<0xF0>');
  });

  it.each(main.ref.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(main.tok.encode(c.text, { addBos: false })).toEqual(c.ids);
    expect(main.tok.encode(c.text)).toEqual([main.ref.meta.bos, ...c.ids]);
    if (!hasSpecial(c.text)) expect(main.tok.decode(c.ids)).toBe(c.spDecoded);
  });
});

describe('tokenizer parity with SentencePiece (add_dummy_prefix=false variant)', () => {
  const v = load(join(DIR, 'no-dummy-prefix'));
  it('gives SentencePiece ids for every case', () => {
    const bad = v.ref.cases.filter((c) => JSON.stringify(v.tok.encode(c.text, { addBos: false })) !== JSON.stringify(c.ids));
    expect(bad.map((c) => c.name)).toEqual([]);
    expect(v.ref.cases.length).toBeGreaterThan(30);
  });
});

describe('special tokens', () => {
  it('each special token in text maps to its single id, also next to other text', () => {
    for (const [content, id] of Object.entries(main.special)) {
      expect(main.tok.encode(content, { addBos: false })).toEqual([id]);
      expect(main.tok.tokenId(content)).toBe(id);
      const ids = main.tok.encode(`x${content}y`, { addBos: false });
      expect(ids.filter((i) => i === id)).toHaveLength(1);
    }
  });

  it('decode keeps or skips special tokens', () => {
    const ids = main.tok.encode('<|im_start|>assistant\nTRUE.<|im_end|>');
    expect(ids[0]).toBe(1);
    expect(main.tok.decode(ids.slice(1))).toBe('<|im_start|> assistant\nTRUE.<|im_end|>');
    expect(main.tok.decode(ids, { skipSpecial: true })).toBe('assistant\nTRUE.');
    expect(main.tok.decode([])).toBe('');
  });

  it('a lone byte of a multi-byte character decodes to U+FFFD, the whole sequence to the character', () => {
    const ids = main.tok.encode('😀', { addBos: false });
    expect(ids.length).toBeGreaterThan(1);
    expect(main.tok.decode(ids.slice(-1))).toBe('\uFFFD');
    expect(main.tok.decode(ids)).toBe('😀');
  });
});
