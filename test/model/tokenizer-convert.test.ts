import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  convertSentencePiece, convertTokenizer, loadTokenizer, parseSentencePieceModel, Tokenizer, TokenizerError,
} from '../../src/model/tokenizer/index.js';

const DIR = join(import.meta.dirname, '../../fixtures/models/tiny-tokenizer');
const MODEL = new Uint8Array(readFileSync(join(DIR, 'tokenizer.model')));
const CONFIG = JSON.parse(readFileSync(join(DIR, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
const tmp = mkdtempSync(join(tmpdir(), 'volmo-tok-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Minimal protobuf writer for hand-made bad models.
const varint = (n: number): number[] => { const o: number[] = []; while (n > 127) { o.push((n & 127) | 128); n = Math.floor(n / 128); } o.push(n); return o; };
const field = (num: number, bytes: number[]): number[] => [...varint(num * 8 + 2), ...varint(bytes.length), ...bytes];
const vfield = (num: number, v: number): number[] => [...varint(num * 8), ...varint(v)];
const utf8 = (s: string): number[] => [...new TextEncoder().encode(s)];
const piece = (s: string, type = 1): number[] => field(1, [...field(1, utf8(s)), ...vfield(3, type)]);

describe('SentencePiece model reader', () => {
  it('reads pieces, types, trainer and normalizer specs', () => {
    const sp = parseSentencePieceModel(MODEL);
    expect(sp.pieces).toHaveLength(800);
    expect(sp.pieces.slice(0, 3).map((p) => [p.piece, p.type])).toEqual([['<unk>', 'unknown'], ['<s>', 'control'], ['</s>', 'control']]);
    expect(sp.pieces[3]).toMatchObject({ piece: '<0x00>', type: 'byte' });
    expect(sp.pieces[258]).toMatchObject({ piece: '<0xFF>', type: 'byte' });
    expect(sp.pieces.slice(-6).map((p) => p.piece)).toEqual(['<|plugin|>', '<|interpreter|>', '<|action_end|>', '<|action_start|>', '<|im_end|>', '<|im_start|>']);
    expect(sp.pieces.slice(-6).every((p) => p.type === 'user_defined')).toBe(true);
    expect(sp.trainer).toMatchObject({ modelType: 'bpe', byteFallback: true, unkId: 0, bosId: 1, eosId: 2, padId: -1 });
    expect(sp.normalizer).toMatchObject({ name: 'identity', addDummyPrefix: true, removeExtraWhitespaces: false });
    // BPE normal pieces carry decreasing scores (merge priority).
    const normal = sp.pieces.filter((p) => p.type === 'normal');
    expect(normal.length).toBeGreaterThan(300);
    expect(normal.some((p) => p.score < 0)).toBe(true);
    expect(parseSentencePieceModel(new Uint8Array(readFileSync(join(DIR, 'no-dummy-prefix/tokenizer.model')))).normalizer.addDummyPrefix).toBe(false);
  });

  it('rejects garbage, truncated and non-BPE models with TokenizerError', () => {
    expect(() => parseSentencePieceModel(new TextEncoder().encode('{"not":"a model"}'))).toThrow(TokenizerError);
    expect(() => parseSentencePieceModel(MODEL.subarray(0, MODEL.length - 7))).toThrow(TokenizerError);
    expect(() => parseSentencePieceModel(new Uint8Array(0))).toThrow(/no pieces/);
    const unigram = new Uint8Array([...piece('<unk>', 2), ...piece('a'), ...field(2, vfield(3, 1))]);
    expect(parseSentencePieceModel(unigram).trainer.modelType).toBe('unigram');
    expect(() => convertSentencePiece(unigram)).toThrow(/only BPE/);
    expect(() => parseSentencePieceModel(new Uint8Array([...piece('a', 9), ...field(2, [])]))).toThrow(/piece type 9/);
  });
});

describe('convertTokenizer', () => {
  const c = convertTokenizer(DIR);
  const tj = c.tokenizerJson as any;

  it('emits the InternLM2 converter pipeline', () => {
    expect(tj.normalizer).toEqual({ type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] });
    expect(tj.pre_tokenizer).toBeNull();
    expect(tj.decoder.decoders.map((d: any) => d.type)).toEqual(['Replace', 'ByteFallback', 'Fuse', 'Strip']);
    expect(tj.decoder.decoders[3]).toMatchObject({ content: ' ', start: 1, stop: 0 });
    expect(tj.model).toMatchObject({ type: 'BPE', byte_fallback: true, fuse_unk: true, unk_token: '<unk>' });
    expect(tj.post_processor.single).toEqual([{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }]);
    expect(c.warnings).toEqual([]);
    const v = convertTokenizer(join(DIR, 'no-dummy-prefix')).tokenizerJson as any;
    expect(v.normalizer.normalizers.map((n: any) => n.type)).toEqual(['Replace']);
  });

  it('carries every added token of tokenizer_config.json, in id order, special and unnormalized', () => {
    const decoder = CONFIG.added_tokens_decoder as Record<string, { content: string }>;
    expect(tj.added_tokens.map((t: any) => [t.id, t.content])).toEqual(Object.entries(decoder).map(([k, v]) => [Number(k), v.content]));
    expect(tj.added_tokens.every((t: any) => t.special && !t.normalized)).toBe(true);
    expect(c.specialTokens['<IMG_CONTEXT>']).toBe(802);
    expect(c.specialTokens['<|im_end|>']).toBe(798);
    expect(Object.keys(tj.model.vocab)).toHaveLength(800); // SentencePiece pieces; <img>.. live beyond, as in InternVL2 (92544+)
    expect((c.tokenizerConfig as any).tokenizer_class).toBe('PreTrainedTokenizerFast');
    expect((c.tokenizerConfig as any).clean_up_tokenization_spaces).toBe(false);
  });

  it('derives merges from piece scores: every merge builds a vocabulary piece, ordered by its score', () => {
    const sp = parseSentencePieceModel(MODEL);
    const score = new Map(sp.pieces.map((p) => [p.piece, p.score]));
    const merges = tj.model.merges as [string, string][];
    expect(merges.length).toBeGreaterThan(300);
    let last = Infinity;
    for (const [l, r] of merges) {
      const s = score.get(l + r);
      expect(s).toBeDefined();
      expect(s!).toBeLessThanOrEqual(last);
      last = s!;
    }
  });

  it('overrides SentencePiece piece strings with added_tokens_decoder like the real InternLM2 ids 92538-92543', () => {
    const sp = parseSentencePieceModel(MODEL);
    const victim = sp.pieces.findIndex((p, i) => i > 400 && p.type === 'normal');
    const cfg = { ...CONFIG, added_tokens_decoder: { ...(CONFIG.added_tokens_decoder as object), [victim]: { content: '<|custom|>', special: true } } };
    const out = convertSentencePiece(MODEL, cfg);
    expect((out.tokenizerJson as any).model.vocab['<|custom|>']).toBe(victim);
    const tok = new Tokenizer(out.tokenizerJson, out.tokenizerConfig);
    expect(tok.encode('a<|custom|>b', { addBos: false })).toContain(victim);
    expect(tok.idToToken(victim)).toBe('<|custom|>');
  });

  it('without tokenizer_config.json uses the SentencePiece control and user-defined symbols (InternLM2 defaults: BOS on, EOS off)', () => {
    const out = convertSentencePiece(MODEL);
    expect(out.specialTokens).toMatchObject({ '<unk>': 0, '<s>': 1, '</s>': 2, '<|im_start|>': 799 });
    expect(out.specialTokens['<img>']).toBeUndefined();
    expect((out.tokenizerConfig as any).add_bos_token).toBe(true);
    expect((out.tokenizerConfig as any).add_eos_token).toBe(false);
    const withAddedJson = convertSentencePiece(MODEL, {}, { '<img>': 800 });
    expect(withAddedJson.specialTokens['<img>']).toBe(800);
  });

  it('is deterministic', () => {
    expect(JSON.stringify(convertTokenizer(DIR))).toBe(JSON.stringify(c));
  });

  it('reports missing or broken files as TokenizerError', () => {
    expect(() => convertTokenizer(join(tmp, 'nope'))).toThrow(TokenizerError);
    const d = mkdtempSync(join(tmp, 'cfg-'));
    copyFileSync(join(DIR, 'tokenizer.model'), join(d, 'tokenizer.model'));
    writeFileSync(join(d, 'tokenizer_config.json'), '{ broken');
    expect(() => convertTokenizer(d)).toThrow(/not a valid JSON/);
    writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({ added_tokens_decoder: { x: { content: 'a' } } }));
    expect(() => convertTokenizer(d)).toThrow(/bad added_tokens_decoder/);
  });
});

describe('loadTokenizer', () => {
  it('loads a built directory (tokenizer.json) and a snapshot directory (tokenizer.model) identically', async () => {
    const built = mkdtempSync(join(tmp, 'built-'));
    const c = convertTokenizer(DIR);
    writeFileSync(join(built, 'tokenizer.json'), JSON.stringify(c.tokenizerJson));
    writeFileSync(join(built, 'tokenizer_config.json'), JSON.stringify(c.tokenizerConfig));
    const a = await loadTokenizer(built);
    const b = await loadTokenizer(DIR);
    const text = '<|im_start|>user\n<img><IMG_CONTEXT></img>\nIs there macular edema? 😀<|im_end|>';
    expect(a.encode(text)).toEqual(b.encode(text));
    expect(a.vocabSize).toBe(809);
    expect(a.bosId).toBe(1);
    expect(() => a.decode([5000])).toThrow(TokenizerError);
    await expect(loadTokenizer(join(tmp, 'empty-none'))).rejects.toThrow(TokenizerError);
    writeFileSync(join(built, 'tokenizer.json'), '[]');
    await expect(loadTokenizer(built)).rejects.toThrow(/not a valid JSON object/);
  });
});
