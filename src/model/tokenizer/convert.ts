/**
 * SentencePiece BPE `tokenizer.model` -> Hugging Face `tokenizer.json`, as InternLM2's own converter
 * (`InternLM2Converter` in tokenization_internlm2_fast.py) does it: BPE with byte fallback and fuse_unk,
 * merges derived from piece scores (transformers' SentencePieceExtractor with vocab_scores), normalizer
 * [Prepend("▁") when add_dummy_prefix, Replace(" " -> "▁")], no pre-tokenizer, decoder
 * [Replace("▁" -> " "), ByteFallback, Fuse, Strip(left 1)], BOS post-processor, and every entry of
 * tokenizer_config.json's added_tokens_decoder as an added token with its own id.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenizerError } from './errors.js';
import { parseSentencePieceModel, type SentencePieceModel } from './sentencepiece-model.js';

export interface AddedTokenSpec {
  content: string;
  lstrip: boolean;
  normalized: boolean;
  rstrip: boolean;
  single_word: boolean;
  special: boolean;
}

export interface ConvertedTokenizer {
  /** HF tokenizer.json object (write with JSON.stringify). */
  tokenizerJson: Record<string, unknown>;
  /** tokenizer_config.json to ship next to it (added_tokens_decoder complete, tokenizer_class fast). */
  tokenizerConfig: Record<string, unknown>;
  /** content -> id of every added token (special ones and user-defined SentencePiece symbols). */
  specialTokens: Record<string, number>;
  /** Things the conversion could not reproduce exactly (empty for InternLM2-style models). */
  warnings: string[];
}

type Json = Record<string, unknown>;

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

function addedSpec(content: string, special: boolean, raw?: Json): AddedTokenSpec {
  return {
    content,
    lstrip: raw?.lstrip === true,
    normalized: raw?.normalized === true,
    rstrip: raw?.rstrip === true,
    single_word: raw?.single_word === true,
    special: raw && typeof raw.special === 'boolean' ? raw.special : special,
  };
}

/** added tokens by id: tokenizer_config.json added_tokens_decoder, then added_tokens.json, then SP control/user symbols. */
function collectAddedTokens(sp: SentencePieceModel, config: Json, addedTokensJson: Json | undefined): Map<number, AddedTokenSpec> {
  const out = new Map<number, AddedTokenSpec>();
  const decoder = config.added_tokens_decoder;
  if (decoder !== undefined) {
    if (!decoder || typeof decoder !== 'object') throw new TokenizerError('tokenizer_config.json: added_tokens_decoder is not an object');
    for (const [key, raw] of Object.entries(decoder as Json)) {
      const id = Number(key);
      const content = tokenContent(raw);
      if (!Number.isInteger(id) || id < 0 || content === undefined || content === '') {
        throw new TokenizerError(`tokenizer_config.json: bad added_tokens_decoder entry ${JSON.stringify(key)}`);
      }
      out.set(id, addedSpec(content, true, raw as Json));
    }
  }
  const specialNames = new Set<string>();
  for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const c = tokenContent(config[k]);
    if (c) specialNames.add(c);
  }
  if (Array.isArray(config.additional_special_tokens)) {
    for (const t of config.additional_special_tokens) {
      const c = tokenContent(t);
      if (c) specialNames.add(c);
    }
  }
  const known = new Set([...out.values()].map((t) => t.content));
  for (const [content, id] of Object.entries(addedTokensJson ?? {})) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new TokenizerError(`added_tokens.json: bad id for ${JSON.stringify(content)}`);
    if (!known.has(content) && !out.has(id)) out.set(id, addedSpec(content, specialNames.has(content)));
  }
  sp.pieces.forEach((p, id) => {
    if ((p.type === 'control' || p.type === 'unknown' || p.type === 'user_defined') && !out.has(id)) {
      out.set(id, addedSpec(p.piece, p.type !== 'user_defined'));
    }
  });
  return out;
}

/**
 * Merges exactly as transformers' `generate_merges(vocab, vocab_scores)`: for every piece (in id order) every split
 * into two pieces of the original vocabulary, locally ordered by (id left, id right), then all stably sorted by
 * (score, len left, len right) descending. Merges whose result SentencePiece itself can never build (byte, control,
 * unknown pieces) are left out.
 */
export function deriveMerges(sp: SentencePieceModel, scoredPieces: { piece: string; score: number }[]): [string, string][] {
  const vocab = new Map<string, number>();
  sp.pieces.forEach((p, i) => vocab.set(p.piece, i));
  const all: { l: string; r: string; score: number; ll: number; lr: number }[] = [];
  scoredPieces.forEach(({ piece, score }, id) => {
    const type = sp.pieces[id]?.type;
    if (type === 'byte' || type === 'control' || type === 'unknown') return;
    const chars = Array.from(piece);
    const local: { l: string; r: string; score: number; ll: number; lr: number }[] = [];
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join('');
      const r = chars.slice(i).join('');
      if (vocab.has(l) && vocab.has(r)) local.push({ l, r, score, ll: i, lr: chars.length - i });
    }
    local.sort((a, b) => vocab.get(a.l)! - vocab.get(b.l)! || vocab.get(a.r)! - vocab.get(b.r)!);
    all.push(...local);
  });
  all.sort((a, b) => b.score - a.score || b.ll - a.ll || b.lr - a.lr);
  return all.map((m) => [m.l, m.r]);
}

/** Pure conversion from the bytes of tokenizer.model and the parsed tokenizer_config.json / added_tokens.json. */
export function convertSentencePiece(modelBytes: Uint8Array, tokenizerConfig: Json = {}, addedTokensJson?: Json): ConvertedTokenizer {
  const sp = parseSentencePieceModel(modelBytes);
  const warnings: string[] = [];
  if (sp.trainer.modelType !== 'bpe') {
    throw new TokenizerError(`tokenizer.model is a SentencePiece ${sp.trainer.modelType} model; only BPE (InternLM2) is supported`);
  }
  if (sp.normalizer.removeExtraWhitespaces) warnings.push('SentencePiece remove_extra_whitespaces=true is not reproduced (InternLM2 converter ignores it)');
  if (sp.normalizer.hasPrecompiledCharsmap) warnings.push(`SentencePiece normalizer "${sp.normalizer.name}" is not reproduced (InternLM2 converter ignores it)`);
  const unkPiece = sp.pieces[sp.trainer.unkId]?.piece ?? sp.trainer.unkPiece;

  const added = collectAddedTokens(sp, tokenizerConfig, addedTokensJson);
  // InternLM2Converter.vocab(): pieces with their scores, strings overridden by added_tokens_decoder.
  const scored = sp.pieces.map((p, id) => ({ piece: added.get(id)?.content ?? p.piece, score: p.score }));
  const vocab: Record<string, number> = {};
  scored.forEach(({ piece }, id) => {
    if (Object.hasOwn(vocab, piece)) warnings.push(`piece ${JSON.stringify(piece)} appears at ids ${vocab[piece]} and ${id}; id ${id} wins`);
    vocab[piece] = id;
  });
  const merges = deriveMerges(sp, scored);

  const addBos = tokenizerConfig.add_bos_token !== false;
  const addEos = tokenizerConfig.add_eos_token === true;
  const bos = tokenContent(tokenizerConfig.bos_token) ?? sp.trainer.bosPiece;
  const eos = tokenContent(tokenizerConfig.eos_token) ?? sp.trainer.eosPiece;
  const specialTokens: Record<string, number> = {};
  const addedList = [...added.entries()].sort((a, b) => a[0] - b[0]).map(([id, t]) => {
    specialTokens[t.content] = id;
    return { id, ...t };
  });
  const idOf = (content: string): number => {
    const id = specialTokens[content] ?? vocab[content];
    if (id === undefined) throw new TokenizerError(`tokenizer: special token ${JSON.stringify(content)} has no id`);
    return id;
  };
  const single: Json[] = [];
  const pair: Json[] = [];
  const post: Json = {};
  if (addBos) {
    single.push({ SpecialToken: { id: bos, type_id: 0 } });
    post[bos] = { id: bos, ids: [idOf(bos)], tokens: [bos] };
  }
  single.push({ Sequence: { id: 'A', type_id: 0 } });
  if (addEos) {
    single.push({ SpecialToken: { id: eos, type_id: 0 } });
    post[eos] = { id: eos, ids: [idOf(eos)], tokens: [eos] };
  }
  pair.push(...single, ...single.map((s) => ('Sequence' in s ? { Sequence: { id: 'B', type_id: 1 } } : { SpecialToken: { ...(s.SpecialToken as Json), type_id: 1 } })));

  const normalizers: Json[] = [];
  if (sp.normalizer.addDummyPrefix) normalizers.push({ type: 'Prepend', prepend: '▁' });
  normalizers.push({ type: 'Replace', pattern: { String: ' ' }, content: '▁' });

  const tokenizerJson: Json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedList,
    normalizer: { type: 'Sequence', normalizers },
    pre_tokenizer: null,
    post_processor: { type: 'TemplateProcessing', single, pair, special_tokens: post },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: sp.normalizer.addDummyPrefix ? 1 : 0, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unkPiece,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: sp.trainer.byteFallback,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const { auto_map: _autoMap, ...rest } = tokenizerConfig;
  const outConfig: Json = {
    ...rest,
    add_bos_token: addBos,
    add_eos_token: addEos,
    added_tokens_decoder: Object.fromEntries(addedList.map(({ id, ...t }) => [String(id), t])),
    bos_token: bos,
    eos_token: eos,
    unk_token: tokenContent(tokenizerConfig.unk_token) ?? unkPiece,
    clean_up_tokenization_spaces: tokenizerConfig.clean_up_tokenization_spaces === true,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  if (tokenizerConfig.pad_token !== undefined) outConfig.pad_token = tokenContent(tokenizerConfig.pad_token);
  return { tokenizerJson, tokenizerConfig: outConfig, specialTokens, warnings };
}

function readJson(path: string, required: boolean): Json | undefined {
  if (!existsSync(path)) {
    if (required) throw new TokenizerError(`missing ${path}`);
    return undefined;
  }
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (cause) {
    throw new TokenizerError(`${path} is not a valid JSON object`, { cause });
  }
}

/** Reads `tokenizer.model` (+ `tokenizer_config.json`, `added_tokens.json` when present) from an HF snapshot directory. */
export function convertTokenizer(snapshotDir: string): ConvertedTokenizer {
  const modelPath = join(snapshotDir, 'tokenizer.model');
  if (!existsSync(modelPath)) throw new TokenizerError(`missing ${modelPath}`);
  const config = readJson(join(snapshotDir, 'tokenizer_config.json'), false) ?? {};
  const addedTokens = readJson(join(snapshotDir, 'added_tokens.json'), false);
  return convertSentencePiece(new Uint8Array(readFileSync(modelPath)), config, addedTokens);
}
