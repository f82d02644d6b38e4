/** Runtime tokenizer: `@huggingface/tokenizers` on the converted tokenizer.json. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { convertTokenizer } from './convert.js';
import { TokenizerError } from './errors.js';

export interface EncodeOptions {
  /** Prepend BOS (`<s>`). Default: tokenizer_config.json's add_bos_token (true for InternLM2). */
  addBos?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (`<|im_end|>`, `<s>`, image tokens ...) from the text. Default false. */
  skipSpecial?: boolean;
}

export class Tokenizer {
  readonly #hf: HfTokenizer;
  readonly #addBos: boolean;
  readonly #bosId: number | undefined;
  readonly #vocabSize: number;

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>) {
    try {
      this.#hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
    } catch (cause) {
      throw new TokenizerError('tokenizer.json could not be loaded', { cause });
    }
    this.#addBos = tokenizerConfig.add_bos_token !== false;
    const bos = typeof tokenizerConfig.bos_token === 'string' ? tokenizerConfig.bos_token : '<s>';
    this.#bosId = this.#hf.token_to_id(bos);
    if (this.#addBos && this.#bosId === undefined) throw new TokenizerError(`tokenizer: BOS token ${bos} is not in the vocabulary`);
    let max = -1;
    for (const id of this.#hf.get_vocab(true).values()) max = Math.max(max, id);
    this.#vocabSize = max + 1;
  }

  /** Number of ids (model vocabulary plus added tokens): the size the embedding / logits must have at least. */
  get vocabSize(): number {
    return this.#vocabSize;
  }

  get bosId(): number | undefined {
    return this.#bosId;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TokenizerError('encode: text must be a string');
    const ids = this.#hf.encode(text, { add_special_tokens: false }).ids;
    return (opts.addBos ?? this.#addBos) ? [this.#bosId!, ...ids] : ids;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.#vocabSize) throw new TokenizerError(`decode: token id ${id} is out of range`);
    }
    return this.#hf.decode([...ids], { skip_special_tokens: opts.skipSpecial ?? false, clean_up_tokenization_spaces: false });
  }

  tokenId(piece: string): number | undefined {
    return this.#hf.token_to_id(piece);
  }

  idToToken(id: number): string | undefined {
    return this.#hf.id_to_token(id);
  }
}

/**
 * Loads `tokenizer.json` + `tokenizer_config.json` from a built model directory. A snapshot directory that only has
 * SentencePiece `tokenizer.model` is converted in memory.
 */
export async function loadTokenizer(modelDir: string): Promise<Tokenizer> {
  const jsonPath = join(modelDir, 'tokenizer.json');
  if (!existsSync(jsonPath)) {
    if (existsSync(join(modelDir, 'tokenizer.model'))) {
      const c = convertTokenizer(modelDir);
      return new Tokenizer(c.tokenizerJson, c.tokenizerConfig);
    }
    throw new TokenizerError(`no tokenizer.json or tokenizer.model in ${modelDir}`);
  }
  const read = async (path: string, required: boolean): Promise<Record<string, unknown>> => {
    if (!required && !existsSync(path)) return {};
    try {
      const v: unknown = JSON.parse(await readFile(path, 'utf8'));
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
      return v as Record<string, unknown>;
    } catch (cause) {
      throw new TokenizerError(`${path} is not a valid JSON object`, { cause });
    }
  };
  return new Tokenizer(await read(jsonPath, true), await read(join(modelDir, 'tokenizer_config.json'), false));
}
