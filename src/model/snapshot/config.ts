/**
 * Parses an InternVL-chat `config.json` (InternVL2 and InternVL2.5 variants) into the geometry the
 * builder and the reference forward pass need. Unsupported variants fail with a clear SnapshotError.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { SnapshotError } from './snapshot-error.js';

export const SYSTEM_MESSAGES: Record<string, string> = {
  'internlm2-chat':
    '你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。',
  internvl2_5:
    '你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。',
};

const visionSchema = z.object({
  image_size: z.number().int().positive().default(448),
  patch_size: z.number().int().positive().default(14),
  num_channels: z.number().int().positive().default(3),
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  layer_norm_eps: z.number().positive().default(1e-6),
  norm_type: z.string().default('layer_norm'),
  qkv_bias: z.boolean().default(true),
  qk_normalization: z.boolean().default(false),
  hidden_act: z.string().default('gelu'),
});

const llmSchema = z.object({
  architectures: z.array(z.string()).default(['InternLM2ForCausalLM']),
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  vocab_size: z.number().int().positive(),
  rms_norm_eps: z.number().positive().default(1e-5),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: z
    .object({ type: z.string().optional(), rope_type: z.string().optional(), factor: z.number() })
    .nullable()
    .optional(),
  max_position_embeddings: z.number().int().positive().default(32768),
  bos_token_id: z.number().int().default(1),
  eos_token_id: z.number().int().default(2),
  pad_token_id: z.number().int().nullable().optional(),
  hidden_act: z.string().default('silu'),
  bias: z.boolean().default(false),
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
  template: z.string().default('internlm2-chat'),
  system_message: z.string().optional(),
  downsample_ratio: z.number().positive().default(0.5),
  ps_version: z.enum(['v1', 'v2']).default('v1'),
  select_layer: z.number().int().default(-1),
  force_image_size: z.number().int().positive().nullable().optional(),
  max_dynamic_patch: z.number().int().positive().default(12),
  use_thumbnail: z.boolean().default(true),
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
  template: string;
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
  const fail = (m: string): never => {
    throw new SnapshotError(`config.json: unsupported model: ${m}`);
  };
  if (!l.architectures.includes('InternLM2ForCausalLM')) fail(`LLM ${l.architectures.join(',')} (only InternLM2)`);
  if (v.norm_type !== 'layer_norm') fail(`vision norm_type ${v.norm_type}`);
  if (v.qk_normalization) fail('vision qk_normalization');
  if (!v.hidden_act.startsWith('gelu')) fail(`vision act ${v.hidden_act}`);
  if (l.hidden_act !== 'silu') fail(`LLM act ${l.hidden_act}`);
  if (l.bias) fail('LLM linear bias');
  const scaling = l.rope_scaling?.type ?? l.rope_scaling?.rope_type;
  // dynamic NTK only changes the base beyond max_position_embeddings (32k), which VOLMO prompts never reach
  if (l.rope_scaling && scaling !== 'dynamic') fail(`rope_scaling ${scaling ?? '(no type)'}`);
  if (c.select_layer !== -1) fail(`select_layer ${c.select_layer}`);
  if (v.hidden_size % v.num_attention_heads) fail('vision hidden not divisible by heads');
  if (l.hidden_size % l.num_attention_heads || l.num_attention_heads % l.num_key_value_heads) fail('LLM head geometry');
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
      kvHeads: l.num_key_value_heads,
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
    template: c.template,
    systemMessage: c.system_message ?? SYSTEM_MESSAGES[c.template] ?? '',
    maxDynamicPatch: c.max_dynamic_patch,
    useThumbnail: c.use_thumbnail,
    random: c.volmo_random_weights,
  };
  return { config: c, geometry };
}

export function readConfig(snapshotDir: string): { config: InternVlConfig; geometry: ModelGeometry } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(snapshotDir, 'config.json'), 'utf8'));
  } catch (cause) {
    throw new SnapshotError('config.json is missing or not valid JSON', { cause });
  }
  return parseConfig(raw);
}
