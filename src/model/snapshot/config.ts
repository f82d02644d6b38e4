/**
 * Parses an InternVL-chat `config.json` (InternVL2 and InternVL2.5 variants) into the geometry the
 * builder and the reference forward pass need. Unsupported variants fail with a clear SnapshotError.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_SYSTEM_MESSAGES, isChatTemplate, type ChatTemplate } from '../prompt.js';
import { SnapshotError } from './snapshot-error.js';

/*
 * Defaults are those of the official config classes (OpenGVLab/InternVL 2410d1d, internvl_chat/internvl/model/):
 * InternVisionConfig (configuration_intern_vit.py), InternLM2Config (internlm2/configuration_internlm2.py) and
 * InternVLChatConfig (configuration_internvl_chat.py), so a key missing from config.json means what it means
 * to the official code. Defaults this builder cannot honour (q/k norm, RMSNorm in the vision tower, LLM
 * biases, no template) are refused in parseConfig.
 */
const visionSchema = z.object({
  image_size: z.number().int().positive().default(224),
  patch_size: z.number().int().positive().default(14),
  num_channels: z.number().int().positive().default(3),
  hidden_size: z.number().int().positive().default(3200),
  num_hidden_layers: z.number().int().positive().default(48),
  num_attention_heads: z.number().int().positive().default(25),
  intermediate_size: z.number().int().positive().default(12800),
  layer_norm_eps: z.number().positive().default(1e-6),
  norm_type: z.string().default('rms_norm'),
  qkv_bias: z.boolean().default(false),
  qk_normalization: z.boolean().default(true),
  hidden_act: z.string().default('gelu'),
});

const llmSchema = z.object({
  /** Required: InternVLChatConfig reads llm_config['architectures'][0] without a default. */
  architectures: z.array(z.string()).min(1),
  hidden_size: z.number().int().positive().default(4096),
  num_hidden_layers: z.number().int().positive().default(32),
  num_attention_heads: z.number().int().positive().default(32),
  /** Absent or null: equal to num_attention_heads (InternLM2Config). */
  num_key_value_heads: z.number().int().positive().nullable().optional(),
  intermediate_size: z.number().int().positive().default(11008),
  vocab_size: z.number().int().positive().default(103168),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: z
    .object({ type: z.string().optional(), rope_type: z.string().optional(), factor: z.number() })
    .nullable()
    .optional(),
  max_position_embeddings: z.number().int().positive().default(2048),
  bos_token_id: z.number().int().default(1),
  eos_token_id: z.number().int().default(2),
  pad_token_id: z.number().int().nullable().default(0),
  hidden_act: z.string().default('silu'),
  bias: z.boolean().default(true),
  tie_word_embeddings: z.boolean().default(false),
});

export const specialTokensSchema = z.object({
  bos: z.number().int(),
  eos: z.number().int(),
  imStart: z.number().int(),
  imEnd: z.number().int(),
  imgStart: z.number().int(),
  imgEnd: z.number().int(),
  imgContext: z.number().int(),
  pad: z.number().int(),
});
export type SpecialTokens = z.infer<typeof specialTokensSchema>;

export const internVlConfigSchema = z.object({
  architectures: z.array(z.string()).default(['InternVLChatModel']),
  model_type: z.string().optional(),
  /** InternVLChatConfig's default is None, which get_conv_template cannot resolve: refused when absent. */
  template: z.string().optional(),
  system_message: z.string().optional(),
  downsample_ratio: z.number().positive().default(0.5),
  ps_version: z.enum(['v1', 'v2']).default('v1'),
  select_layer: z.number().int().default(-1),
  force_image_size: z.number().int().positive().nullable().optional(),
  max_dynamic_patch: z.number().int().positive().default(6),
  use_thumbnail: z.boolean().default(false),
  vision_config: visionSchema,
  llm_config: llmSchema,
  /** Marker written by the tiny and benchmark snapshots: weights are random, outputs are not clinical. */
  volmo_random_weights: z.boolean().default(false),
  /** Special-token ids for snapshots without a tokenizer_config.json (tiny/bench). */
  volmo_special_tokens: specialTokensSchema.optional(),
  volmo_model_name: z.string().optional(),
});
export type InternVlConfig = z.infer<typeof internVlConfigSchema>;

export interface VisionGeometry {
  imageSize: number;
  patchSize: number;
  channels: number;
  hidden: number;
  layers: number;
  heads: number;
  headDim: number;
  intermediate: number;
  eps: number;
  qkvBias: boolean;
  /** Patches per side (imageSize / patchSize). */
  grid: number;
}

export interface LlmGeometry {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  eps: number;
  ropeTheta: number;
  ropeScaling: { type: string; factor: number } | null;
  maxPositions: number;
}

export interface ModelGeometry {
  vision: VisionGeometry;
  llm: LlmGeometry;
  downsampleRatio: number;
  psVersion: 'v1' | 'v2';
  tokensPerTile: number;
  /** Width of the projector input: vision hidden / downsample_ratio^2. */
  projectorIn: number;
  template: ChatTemplate;
  systemMessage: string;
  maxDynamicPatch: number;
  useThumbnail: boolean;
  random: boolean;
}

export function parseConfig(raw: unknown): { config: InternVlConfig; geometry: ModelGeometry } {
  const parsed = internVlConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new SnapshotError(`config.json: ${first?.path.join('.') ?? ''} ${first?.message ?? 'invalid'}`);
  }
  const c = parsed.data;
  const v = c.vision_config;
  const l = c.llm_config;
  const fail: (m: string) => never = (m) => {
    throw new SnapshotError(`config.json: unsupported model: ${m}`);
  };
  if (l.architectures[0] !== 'InternLM2ForCausalLM') fail(`LLM ${l.architectures.join(',')} (only InternLM2)`);
  const template = c.template;
  if (template === undefined) fail('no template (InternVLChatConfig defaults to None, which the official chat() cannot use)');
  if (!isChatTemplate(template)) fail(`template ${JSON.stringify(template)} (internlm2-chat or internvl2_5)`);
  if (v.norm_type !== 'layer_norm') fail(`vision norm_type ${v.norm_type} (only layer_norm is built; InternVisionConfig's default when absent is rms_norm)`);
  if (v.qk_normalization) fail('vision qk_normalization (q_norm/k_norm are not built; InternVisionConfig\'s default when absent is true)');
  // ACT2FN: 'gelu' is the exact erf GELU the graph builds; the other gelu_* names are approximations
  if (v.hidden_act !== 'gelu') fail(`vision act ${v.hidden_act} (only exact gelu)`);
  if (l.hidden_act !== 'silu') fail(`LLM act ${l.hidden_act}`);
  if (l.bias) fail('LLM linear bias (wqkv/wo biases are not built; InternLM2Config\'s default when absent is true)');
  if (l.tie_word_embeddings) fail('tie_word_embeddings (the builder reads the separate output.weight)');
  const scaling = l.rope_scaling?.type ?? l.rope_scaling?.rope_type;
  // dynamic NTK only changes the base beyond max_position_embeddings; the runtime refuses sequences past it
  if (l.rope_scaling && scaling !== 'dynamic') fail(`rope_scaling ${scaling ?? '(no type)'}`);
  if (c.select_layer !== -1) fail(`select_layer ${c.select_layer}`);
  if (v.hidden_size % v.num_attention_heads) fail('vision hidden not divisible by heads');
  const kvHeads = l.num_key_value_heads ?? l.num_attention_heads;
  if (l.hidden_size % l.num_attention_heads || l.num_attention_heads % kvHeads) fail('LLM head geometry');
  const imageSize = c.force_image_size ?? v.image_size;
  if (imageSize !== v.image_size) fail(`force_image_size ${imageSize} != vision image_size ${v.image_size}`);
  const grid = v.image_size / v.patch_size;
  const down = grid * c.downsample_ratio;
  if (!Number.isInteger(grid) || !Number.isInteger(down)) fail('image/patch/downsample geometry');
  const scale = 1 / c.downsample_ratio;
  if (!Number.isInteger(scale)) fail(`downsample_ratio ${c.downsample_ratio}`);
  const geometry: ModelGeometry = {
    vision: {
      imageSize: v.image_size,
      patchSize: v.patch_size,
      channels: v.num_channels,
      hidden: v.hidden_size,
      layers: v.num_hidden_layers,
      heads: v.num_attention_heads,
      headDim: v.hidden_size / v.num_attention_heads,
      intermediate: v.intermediate_size,
      eps: v.layer_norm_eps,
      qkvBias: v.qkv_bias,
      grid,
    },
    llm: {
      hidden: l.hidden_size,
      layers: l.num_hidden_layers,
      heads: l.num_attention_heads,
      kvHeads,
      headDim: l.hidden_size / l.num_attention_heads,
      intermediate: l.intermediate_size,
      vocab: l.vocab_size,
      eps: l.rms_norm_eps,
      ropeTheta: l.rope_theta,
      ropeScaling: l.rope_scaling ? { type: 'dynamic', factor: l.rope_scaling.factor } : null,
      maxPositions: l.max_position_embeddings,
    },
    downsampleRatio: c.downsample_ratio,
    psVersion: c.ps_version,
    tokensPerTile: down * down,
    projectorIn: v.hidden_size * scale * scale,
    template,
    systemMessage: c.system_message ?? DEFAULT_SYSTEM_MESSAGES[template],
    maxDynamicPatch: c.max_dynamic_patch,
    useThumbnail: c.use_thumbnail,
    random: c.volmo_random_weights,
  };
  return { config: c, geometry };
}

/** `rope_scaling.factor` written as an integer literal (`"factor": 2`); groups: the text before it, the digits. */
export const INTEGER_ROPE_FACTOR = /("rope_scaling"\s*:\s*\{[^{}]*"factor"\s*:\s*)(-?\d+)(?=\s*[,}])/;

export function readConfig(snapshotDir: string): { config: InternVlConfig; geometry: ModelGeometry } {
  let text: string;
  let raw: unknown;
  try {
    text = readFileSync(join(snapshotDir, 'config.json'), 'utf8');
    raw = JSON.parse(text);
  } catch (cause) {
    throw new SnapshotError('config.json is missing or not valid JSON', { cause });
  }
  // JSON.parse reads 2 and 2.0 alike; InternLM2Config refuses an int factor (isinstance(factor, float))
  if (INTEGER_ROPE_FACTOR.test(text)) throw new SnapshotError('config.json: llm_config.rope_scaling.factor must be a float (2.0, not 2), as InternLM2Config requires');
  return parseConfig(raw);
}
