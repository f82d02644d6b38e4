/**
 * `volmo model tiny <out>`: a tiny InternVL-chat snapshot in the real HF layout (tensor names, interleaved wqkv,
 * bf16 safetensors, config.json keys) with seeded random weights. Real 448 px tiles, patch 14 and pixel shuffle
 * 0.5, so a tile is still 256 tokens; everything else is small enough for tests.
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandomSnapshot } from './snapshot/random-snapshot.js';
import { specialTokensFromTokenizerConfig } from './snapshot/special-tokens.js';

export const TINY_TOKENIZER_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/models/tiny-tokenizer');
const TOKENIZER_FILES = ['tokenizer.model', 'tokenizer_config.json'] as const;

/** Tiny special-token layout (same as the tiny SentencePiece fixture: 800 pieces + 9 added tokens). */
export const TINY_SPECIAL_TOKENS = { bos: 1, eos: 2, pad: 2, imEnd: 798, imStart: 799, imgStart: 800, imgEnd: 801, imgContext: 802 };
export const TINY_VOCAB = 809;

export interface TinySnapshotOptions {
  seed?: number;
  /** Write sharded safetensors with an index (for tests of the sharded path). */
  shardBytes?: number;
  /** Copy the tiny tokenizer fixture when present (default true). */
  tokenizer?: boolean;
}

export function internVlConfig(params: {
  name: string;
  vision: { hidden: number; layers: number; heads: number; intermediate: number };
  llm: { hidden: number; layers: number; heads: number; kvHeads: number; intermediate: number; vocab: number };
  specialTokens?: typeof TINY_SPECIAL_TOKENS;
}): Record<string, unknown> {
  const { vision, llm } = params;
  return {
    architectures: ['InternVLChatModel'],
    model_type: 'internvl_chat',
    template: 'internlm2-chat',
    downsample_ratio: 0.5,
    dynamic_image_size: true,
    force_image_size: 448,
    max_dynamic_patch: 12,
    min_dynamic_patch: 1,
    ps_version: 'v2',
    select_layer: -1,
    use_thumbnail: true,
    torch_dtype: 'bfloat16',
    vision_config: {
      architectures: ['InternVisionModel'],
      model_type: 'intern_vit_6b',
      hidden_act: 'gelu',
      hidden_size: vision.hidden,
      image_size: 448,
      intermediate_size: vision.intermediate,
      layer_norm_eps: 1e-6,
      norm_type: 'layer_norm',
      num_attention_heads: vision.heads,
      num_channels: 3,
      num_hidden_layers: vision.layers,
      patch_size: 14,
      qk_normalization: false,
      qkv_bias: true,
      use_flash_attn: false,
    },
    llm_config: {
      architectures: ['InternLM2ForCausalLM'],
      model_type: 'internlm2',
      hidden_act: 'silu',
      hidden_size: llm.hidden,
      intermediate_size: llm.intermediate,
      num_attention_heads: llm.heads,
      num_hidden_layers: llm.layers,
      num_key_value_heads: llm.kvHeads,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-5,
      rope_theta: 1000000,
      rope_scaling: { type: 'dynamic', factor: 2.0 },
      vocab_size: llm.vocab,
      bias: false,
      tie_word_embeddings: false,
      bos_token_id: 1,
      eos_token_id: 2,
      pad_token_id: 2,
      attn_implementation: 'eager',
    },
    volmo_random_weights: true,
    volmo_model_name: params.name,
    ...(params.specialTokens ? { volmo_special_tokens: params.specialTokens } : {}),
  };
}

export function writeTinySnapshot(outDir: string, opts: TinySnapshotOptions = {}): { tokenizer: boolean } {
  const haveTokenizer = opts.tokenizer !== false && TOKENIZER_FILES.every((f) => existsSync(join(TINY_TOKENIZER_DIR, f)));
  let vocab = TINY_VOCAB;
  let specialTokens = TINY_SPECIAL_TOKENS;
  if (haveTokenizer) {
    const tc = JSON.parse(readFileSync(join(TINY_TOKENIZER_DIR, 'tokenizer_config.json'), 'utf8')) as {
      added_tokens_decoder?: Record<string, unknown>;
    };
    vocab = Math.max(...Object.keys(tc.added_tokens_decoder ?? {}).map(Number)) + 1;
    specialTokens = specialTokensFromTokenizerConfig(tc) ?? TINY_SPECIAL_TOKENS;
  }
  const config = internVlConfig({
    name: 'volmo-tiny',
    vision: { hidden: 32, layers: 2, heads: 2, intermediate: 64 },
    llm: { hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 128, vocab },
    specialTokens,
  });
  writeRandomSnapshot(outDir, config, { seed: opts.seed ?? 1234, shardBytes: opts.shardBytes });
  if (haveTokenizer) for (const f of TOKENIZER_FILES) copyFileSync(join(TINY_TOKENIZER_DIR, f), join(outDir, f));
  return { tokenizer: haveTokenizer };
}
