/** Special-token ids from `tokenizer_config.json` (added_tokens_decoder), the config marker, or the real defaults. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InternVlConfig, SpecialTokens } from './config.js';
import { SnapshotError } from './snapshot-error.js';

/** InternVL2-2B / 2.5-2B ids (volmo-model.md §3.5). */
export const INTERNVL2_SPECIAL_TOKENS: SpecialTokens = {
  bos: 1,
  eos: 2,
  pad: 2,
  imEnd: 92542,
  imStart: 92543,
  imgStart: 92544,
  imgEnd: 92545,
  imgContext: 92546,
};

const CONTENT: Record<keyof SpecialTokens, string> = {
  bos: '<s>',
  eos: '</s>',
  pad: '</s>',
  imEnd: '<|im_end|>',
  imStart: '<|im_start|>',
  imgStart: '<img>',
  imgEnd: '</img>',
  imgContext: '<IMG_CONTEXT>',
};

/** The id of a special token given by its text (`<|im_end|>`), or a SnapshotError. */
export function specialTokenId(tokens: SpecialTokens, content: string): number {
  const key = (Object.keys(CONTENT) as (keyof SpecialTokens)[]).find((k) => CONTENT[k] === content);
  if (key === undefined) throw new SnapshotError(`no id known for the special token ${content}`);
  return tokens[key];
}

export function specialTokensFromTokenizerConfig(raw: unknown): SpecialTokens | null {
  const decoder = (raw as { added_tokens_decoder?: Record<string, { content?: string }> })?.added_tokens_decoder;
  if (!decoder) return null;
  const byContent = new Map<string, number>();
  for (const [id, t] of Object.entries(decoder)) if (t?.content) byContent.set(t.content, Number(id));
  const padName = (raw as { pad_token?: string }).pad_token ?? '</s>';
  const out: Partial<SpecialTokens> = {};
  for (const key of Object.keys(CONTENT) as (keyof SpecialTokens)[]) {
    const id = byContent.get(key === 'pad' ? padName : CONTENT[key]);
    if (id === undefined) return null;
    out[key] = id;
  }
  return out as SpecialTokens;
}

/** Resolves the special-token ids of a snapshot, checking they fit the vocabulary. */
export function resolveSpecialTokens(snapshotDir: string, config: InternVlConfig): SpecialTokens {
  let ids: SpecialTokens | null = null;
  const tcPath = join(snapshotDir, 'tokenizer_config.json');
  if (existsSync(tcPath)) {
    try {
      ids = specialTokensFromTokenizerConfig(JSON.parse(readFileSync(tcPath, 'utf8')));
    } catch (cause) {
      throw new SnapshotError('tokenizer_config.json is not valid JSON', { cause });
    }
  }
  ids ??= config.volmo_special_tokens ?? null;
  if (!ids && config.llm_config.vocab_size === 92553) ids = INTERNVL2_SPECIAL_TOKENS;
  if (!ids) throw new SnapshotError('cannot determine special-token ids (no tokenizer_config.json added_tokens_decoder)');
  for (const [k, v] of Object.entries(ids)) {
    if (v < 0 || v >= config.llm_config.vocab_size) throw new SnapshotError(`special token ${k}=${v} outside vocab`);
  }
  return ids;
}
