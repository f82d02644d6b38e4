/**
 * `manifest.json` of a built model directory (docs/dev/model-contract.md): zod schema, plus reading and
 * checksum verification for the runtime.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { specialTokensSchema } from './snapshot/config.js';
import { SnapshotError } from './snapshot/snapshot-error.js';

export const MANIFEST_FILE = 'manifest.json';
/**
 * Bumped whenever graphs built by an older builder no longer fit the runtime. 2: the decoder attends to the
 * prefix KV in place and broadcasts a batch-1 prefix over several question rows.
 */
export const MANIFEST_FORMAT = 'volmo-model/2';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const count = z.number().int().nonnegative();
const fp16RangeShape = { overflow: count, subnormal: count, flushedToZero: count };

/** Activations of the int4 MatMulNBits layers: fp32, or int8 (`accuracy_level` 4). */
export const ACTIVATION_DTYPES = ['fp32', 'int8'] as const;
export type ActivationDtype = (typeof ACTIVATION_DTYPES)[number];
/** Weights of the vision encoder's Linear layers (int4: MatMulNBits; int8: DynamicQuantizeMatMul). */
export const VISION_DTYPES = ['fp32', 'fp16', 'int4', 'int8'] as const;
export type VisionDtype = (typeof VISION_DTYPES)[number];
export const quantizationSchema = z.object({ activations: z.enum(ACTIVATION_DTYPES), vision: z.enum(VISION_DTYPES) });
export type Quantization = z.infer<typeof quantizationSchema>;

const graphSchema = z.object({
  file: z.string(),
  inputs: z.array(z.string()),
  outputs: z.array(z.string()),
  externalData: z.string().nullable().default(null),
});

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  modelName: z.string(),
  modelVersion: z.string(),
  createdAt: z.string(),
  builder: z.string(),
  /** sha256 of the snapshot files the model was built from (config.json, weights, tokenizer.model). */
  source: z.object({
    config: sha256Hex,
    weights: z.record(z.string(), sha256Hex),
    tokenizer: sha256Hex.nullable(),
  }),
  dtype: z.enum(['fp32', 'fp16', 'int4', 'int8']),
  /** Beyond `dtype` (absent in directories built before it existed: fp32 activations, vision like `dtype`'s). */
  quantization: quantizationSchema.optional(),
  /** dtype of every graph input/output tensor that carries floats (activations and KV cache). */
  ioDtype: z.literal('float32'),
  template: z.string(),
  systemMessage: z.string(),
  imageSize: z.number().int().positive(),
  tokensPerTile: z.number().int().positive(),
  maxTiles: z.number().int().positive(),
  useThumbnail: z.boolean(),
  normalize: z.object({ mean: z.tuple([z.number(), z.number(), z.number()]), std: z.tuple([z.number(), z.number(), z.number()]) }),
  tokens: specialTokensSchema,
  stopIds: z.array(z.number().int()).min(1),
  llm: z.object({
    layers: z.number().int().positive(),
    hidden: z.number().int().positive(),
    heads: z.number().int().positive(),
    kvHeads: z.number().int().positive(),
    headDim: z.number().int().positive(),
    intermediate: z.number().int().positive(),
    vocab: z.number().int().positive(),
    ropeTheta: z.number().positive(),
    ropeScaling: z.object({ type: z.string(), factor: z.number() }).nullable(),
    maxPositions: z.number().int().positive(),
    rmsNormEps: z.number().positive(),
  }),
  vision: z.object({
    imageSize: z.number().int().positive(),
    patchSize: z.number().int().positive(),
    hidden: z.number().int().positive(),
    layers: z.number().int().positive(),
    heads: z.number().int().positive(),
    intermediate: z.number().int().positive(),
    downsampleRatio: z.number().positive(),
    psVersion: z.enum(['v1', 'v2']),
  }),
  graphs: z.object({
    vision: graphSchema,
    decoder: graphSchema.extend({
      layerNamePatterns: z.object({
        prefixKey: z.string(),
        prefixValue: z.string(),
        pastKey: z.string(),
        pastValue: z.string(),
        presentKey: z.string(),
        presentValue: z.string(),
      }),
    }),
  }),
  /** Tokenizer files present in the directory (absent when the snapshot had no tokenizer.model). */
  tokenizer: z.object({ json: z.string(), config: z.string() }).nullable(),
  /** Random weights (tiny/bench models): outputs must be labelled NOT clinical. */
  random: z.boolean(),
  /** Checkpoint tensors the graphs leave out, present only when built with `--allow-unused` (optional: format unchanged). */
  unusedTensors: z.array(z.string()).optional(),
  /**
   * fp16/int4 builds: what half storage did to the weights (docs/model-build.md). Tensors with a value beyond
   * +-65504 are kept fp32 (`keptFp32`); subnormal/flushed counts say how many tiny values lost precision.
   */
  fp16Storage: z
    .object({
      values: count,
      ...fp16RangeShape,
      keptFp32: z.array(z.string()),
      tensors: z.record(z.string(), z.object(fp16RangeShape)),
    })
    .optional(),
  /** Every other file of the directory with its size and sha256. */
  files: z.record(z.string(), z.object({ sha256: sha256Hex, bytes: z.number().int().nonnegative() })),
});
export type Manifest = z.infer<typeof manifestSchema>;

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Parses manifest.json of `modelDir` (SnapshotError when missing or invalid). */
export function readManifest(modelDir: string): Manifest {
  const path = join(modelDir, MANIFEST_FILE);
  if (!existsSync(path)) throw new SnapshotError(`${MANIFEST_FILE} is missing in the model directory`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new SnapshotError(`${MANIFEST_FILE} is not valid JSON`, { cause });
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (typeof format === 'string' && format.startsWith('volmo-model/') && format !== MANIFEST_FORMAT) {
    throw new SnapshotError(`${MANIFEST_FILE}: format ${format} was built by another volmo version; this one reads ${MANIFEST_FORMAT}: rebuild with \`volmo model build\``);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new SnapshotError(`${MANIFEST_FILE}: ${first?.path.join('.') ?? ''} ${first?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export interface VerifyProblem {
  file: string;
  problem: 'missing' | 'size' | 'checksum';
}

/** Checks every listed file's size and sha256. Returns the problems (empty when the directory is intact). */
export async function verifyModelFiles(modelDir: string, manifest: Manifest, opts: { checksums?: boolean } = {}): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = [];
  for (const [file, want] of Object.entries(manifest.files)) {
    const path = join(modelDir, file);
    if (!existsSync(path)) {
      problems.push({ file, problem: 'missing' });
      continue;
    }
    const { size } = statSync(path);
    if (size !== want.bytes) problems.push({ file, problem: 'size' });
    else if (opts.checksums !== false && (await sha256File(path)) !== want.sha256) problems.push({ file, problem: 'checksum' });
  }
  return problems;
}

/** Reads and verifies a model directory; throws a SnapshotError naming the first bad file. */
export async function loadVerifiedManifest(modelDir: string, opts: { checksums?: boolean } = {}): Promise<Manifest> {
  const manifest = readManifest(modelDir);
  const problems = await verifyModelFiles(modelDir, manifest, opts);
  if (problems.length > 0) {
    const p = problems[0];
    throw new SnapshotError(`model file ${p.file}: ${p.problem === 'missing' ? 'missing' : p.problem === 'size' ? 'wrong size' : 'checksum mismatch'}`);
  }
  return manifest;
}
