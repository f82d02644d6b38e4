/**
 * `volmo model build <snapshot> <out>`: HF InternVL-chat snapshot -> vision.onnx + decoder.onnx (+ external
 * data) + tokenizer.json + manifest.json, per docs/dev/model-contract.md.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Logger } from '../../log.js';
import { MANIFEST_FILE, MANIFEST_FORMAT, manifestSchema, sha256File, type Manifest } from '../manifest.js';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { stopTokenOf } from '../prompt.js';
import { readConfig, type ModelGeometry } from '../snapshot/config.js';
import { INDEX_FILE, SafetensorsReader } from '../snapshot/safetensors.js';
import { SnapshotError } from '../snapshot/snapshot-error.js';
import { resolveSpecialTokens, specialTokenId } from '../snapshot/special-tokens.js';
import { tensorSpecs, unusedTensorNames, V } from '../snapshot/tensor-names.js';
import { convertTokenizer } from '../tokenizer/index.js';
import { buildDecoderGraph, DECODER_LAYER_NAMES } from './decoder-graph.js';
import { Fp16Audit } from './fp16-audit.js';
import { LinearEmitter, type WeightDtype } from './linear.js';
import { graphLinear, resolveQuantization } from './quant-options.js';
import { buildVisionGraph } from './vision-graph.js';

export const VISION_FILE = 'vision.onnx';
export const DECODER_FILE = 'decoder.onnx';
const EXTERNAL_LIMIT = 1e9; // protobuf caps a model file at 2 GiB; go external well before that

export interface BuildOptions {
  dtype?: WeightDtype;
  /** true: always put weights in `<graph>.onnx.data`; false/undefined: only when a graph would exceed ~2 GB. */
  externalData?: boolean;
  /** Default maximum tiles per image written to the manifest (VOLMO evaluates with 6). */
  maxTiles?: number;
  /** int8: the int4 MatMulNBits layers quantise their activations to int8 (`accuracy_level` 4). */
  activations?: string;
  /** Weights of the vision encoder's Linear layers: fp32, fp16, int4 or int8 (default: fp32 for fp32 builds, else fp16). */
  vision?: string;
  logger?: Logger;
  /** Build even when the checkpoint has tensors the graphs do not use; they are listed in the manifest. */
  allowUnused?: boolean;
}

export interface BuildResult {
  outDir: string;
  manifest: Manifest;
  warnings: string[];
}

function estimateBytes(geo: ModelGeometry, part: 'vision' | 'decoder', dtype: WeightDtype): number {
  const bytes = { fp32: 4, fp16: 2, int8: 1, int4: 0.6 }[dtype];
  return tensorSpecs(geo)
    .filter((s) => (part === 'vision') === (s.name.startsWith(`${V}.`) || s.name.startsWith('mlp1.')))
    .reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1) * bytes, 0);
}

function buildGraph(
  outDir: string,
  file: string,
  external: boolean,
  opsets: { domain: string; version: number }[],
  fill: (g: GraphBuilder) => void,
): string | null {
  const dataFile = `${file}.data`;
  rmSync(join(outDir, dataFile), { force: true });
  const g = new GraphBuilder(file.replace('.onnx', ''), external ? { path: join(outDir, dataFile), location: dataFile } : undefined);
  try {
    fill(g);
    g.save(join(outDir, file), opsets);
  } catch (err) {
    g.abort();
    throw err;
  }
  return external ? dataFile : null;
}

export async function buildModel(snapshotDir: string, outDir: string, opts: BuildOptions = {}): Promise<BuildResult> {
  const dtype = opts.dtype ?? 'fp32';
  const quantization = resolveQuantization(dtype, opts);
  const visionLin = graphLinear(quantization, 'vision', dtype);
  const decoderLin = graphLinear(quantization, 'decoder', dtype);
  const log = opts.logger;
  const warnings: string[] = [];
  const { config, geometry: geo } = readConfig(snapshotDir);
  const reader = new SafetensorsReader(snapshotDir);
  const tokens = resolveSpecialTokens(snapshotDir, config);
  for (const s of tensorSpecs(geo)) {
    const info = reader.info(s.name);
    if (info.shape.join(',') !== s.shape.join(',')) throw new SnapshotError(`tensor ${s.name} has shape [${info.shape}], expected [${s.shape}]`);
  }
  const unused = checkUnused(unusedTensorNames(reader.names(), geo), opts.allowUnused === true, warnings);
  if (resolve(snapshotDir) === resolve(outDir)) throw new SnapshotError('output directory must differ from the snapshot directory');
  mkdirSync(outDir, { recursive: true });

  const visionExt = opts.externalData === true || estimateBytes(geo, 'vision', visionLin.dtype) > EXTERNAL_LIMIT;
  const decoderExt = opts.externalData === true || estimateBytes(geo, 'decoder', dtype) > EXTERNAL_LIMIT;
  log?.info({ dtype, quantization, visionExt, decoderExt }, 'building vision graph');
  const audit = new Fp16Audit();
  const visionData = buildGraph(outDir, VISION_FILE, visionExt, opsets(visionLin.dtype), (g) =>
    buildVisionGraph(g, new LinearEmitter(g, visionLin.dtype, visionLin.opts, audit), reader, geo),
  );
  log?.info('building decoder graph');
  let decoderIo = { inputs: [] as string[], outputs: [] as string[] };
  const decoderData = buildGraph(outDir, DECODER_FILE, decoderExt, opsets(dtype), (g) => {
    decoderIo = buildDecoderGraph(g, new LinearEmitter(g, dtype, decoderLin.opts, audit), reader, geo, tokens.imgContext);
  });
  const fp16Storage = audit.report();
  if (fp16Storage?.keptFp32.length) warnings.push(`kept fp32 (values beyond the fp16 range): ${fp16Storage.keptFp32.join(', ')}`);

  let tokenizer: Manifest['tokenizer'] = null;
  const tokModel = join(snapshotDir, 'tokenizer.model');
  if (existsSync(tokModel)) {
    const converted = convertTokenizer(snapshotDir);
    writeFileSync(join(outDir, 'tokenizer.json'), JSON.stringify(converted.tokenizerJson));
    writeFileSync(join(outDir, 'tokenizer_config.json'), JSON.stringify(converted.tokenizerConfig, null, 2));
    warnings.push(...converted.warnings);
    tokenizer = { json: 'tokenizer.json', config: 'tokenizer_config.json' };
  } else {
    warnings.push('snapshot has no tokenizer.model: the built model has no tokenizer.json');
  }
  for (const w of warnings) log?.warn(w);

  const weightFiles = existsSync(join(snapshotDir, INDEX_FILE)) ? [INDEX_FILE, ...reader.files] : reader.files;
  const source: Manifest['source'] = { config: await sha256File(join(snapshotDir, 'config.json')), weights: {}, tokenizer: null };
  for (const f of weightFiles) source.weights[f] = await sha256File(join(snapshotDir, f));
  if (existsSync(tokModel)) source.tokenizer = await sha256File(tokModel);
  const version = createHash('sha256').update(JSON.stringify(source)).digest('hex').slice(0, 12);

  const files: Manifest['files'] = {};
  for (const f of readdirSync(outDir).sort()) {
    if (f === MANIFEST_FILE) continue;
    const p = join(outDir, f);
    if (!statSync(p).isFile()) continue;
    files[f] = { sha256: await sha256File(p), bytes: statSync(p).size };
  }

  const manifest: Manifest = manifestSchema.parse({
    format: MANIFEST_FORMAT,
    modelName: config.volmo_model_name ?? basename(resolve(snapshotDir)),
    modelVersion: version,
    createdAt: new Date().toISOString(),
    builder: 'volmo-cds model build',
    source,
    dtype,
    quantization,
    ioDtype: 'float32',
    template: geo.template,
    systemMessage: geo.systemMessage,
    imageSize: geo.vision.imageSize,
    tokensPerTile: geo.tokensPerTile,
    maxTiles: opts.maxTiles ?? 6,
    useThumbnail: geo.useThumbnail,
    normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    tokens,
    stopIds: [specialTokenId(tokens, stopTokenOf(geo.template))],
    llm: {
      layers: geo.llm.layers,
      hidden: geo.llm.hidden,
      heads: geo.llm.heads,
      kvHeads: geo.llm.kvHeads,
      headDim: geo.llm.headDim,
      intermediate: geo.llm.intermediate,
      vocab: geo.llm.vocab,
      ropeTheta: geo.llm.ropeTheta,
      ropeScaling: geo.llm.ropeScaling,
      maxPositions: geo.llm.maxPositions,
      rmsNormEps: geo.llm.eps,
    },
    vision: {
      imageSize: geo.vision.imageSize,
      patchSize: geo.vision.patchSize,
      hidden: geo.vision.hidden,
      layers: geo.vision.layers,
      heads: geo.vision.heads,
      intermediate: geo.vision.intermediate,
      downsampleRatio: geo.downsampleRatio,
      psVersion: geo.psVersion,
    },
    graphs: {
      vision: { file: VISION_FILE, inputs: ['pixel_values'], outputs: ['image_embeds'], externalData: visionData },
      decoder: { file: DECODER_FILE, ...decoderIo, externalData: decoderData, layerNamePatterns: DECODER_LAYER_NAMES },
    },
    tokenizer,
    random: geo.random,
    ...(unused.length ? { unusedTensors: unused } : {}),
    ...(fp16Storage ? { fp16Storage } : {}),
    files,
  });
  writeFileSync(join(outDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  log?.info({ outDir, files: Object.keys(files).length }, 'model built');
  return { outDir, manifest, warnings };
}

/**
 * Tensors the checkpoint has but config.json's model does not use (a q_norm, a wqkv bias...) mean the weights
 * and the config disagree: refused, naming them, unless `allowUnused` (then a warning and the manifest list).
 */
function checkUnused(unused: string[], allow: boolean, warnings: string[]): string[] {
  if (!unused.length) return unused;
  const shown = `${unused.slice(0, 12).join(', ')}${unused.length > 12 ? `, … (${unused.length - 12} more)` : ''}`;
  if (!allow) {
    throw new SnapshotError(`the checkpoint has ${unused.length} tensor(s) that the model described by config.json does not use: ${shown}. ` +
      'Check that config.json matches the weights; --allow-unused builds without them and lists them in the manifest');
  }
  warnings.push(`built without ${unused.length} unused checkpoint tensor(s) (--allow-unused): ${shown}`);
  return unused;
}

/** Opset imports of a graph built with `dtype` weights (MatMulNBits, DynamicQuantizeMatMul live in com.microsoft). */
export function opsets(dtype: WeightDtype): { domain: string; version: number }[] {
  return dtype === 'int4' || dtype === 'int8' ? [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }] : [{ domain: '', version: 17 }];
}
