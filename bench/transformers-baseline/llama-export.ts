/**
 * Exports the decoder of an InternVL snapshot as a Llama-shaped ONNX folder that transformers.js loads as
 * `model_type: "llama"` (InternLM2 is Llama-shaped: RMSNorm, rotate-half RoPE, GQA, SwiGLU). The maths is
 * the product's own decoder graph (`buildDecoderGraph`, same de-interleaved wqkv); only its I/O is adapted
 * to what transformers.js feeds a decoder-only model:
 *   input_ids, attention_mask, position_ids, past_key_values.{i}.key/value [batch_size, kv, past, hd]
 *   -> logits [batch, 1, vocab], present.{i}.key/value [batch_size, kv, past + seq, hd] (the whole KV).
 * The product's image input is fed an empty tensor, its read-only prefix KV an empty slice of the past,
 * and the new tokens' KV is concatenated after the past (what a `present` output is by convention).
 * transformers.js sizes its first (empty) cache from the graph's input shapes: every symbolic dim except
 * `batch_size` becomes 0, hence the dim names below.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDecoderGraph, DECODER_LAYER_NAMES, layerName } from '../../src/model/build/decoder-graph.js';
import { opsets } from '../../src/model/build/build-model.js';
import { LinearEmitter, type WeightDtype } from '../../src/model/build/linear.js';
import { attr, GraphBuilder } from '../../src/model/onnx/graph-builder.js';
import { DataType } from '../../src/model/onnx/onnx-proto.js';
import { readConfig, type LlmGeometry } from '../../src/model/snapshot/config.js';
import { SafetensorsReader } from '../../src/model/snapshot/safetensors.js';
import { resolveSpecialTokens } from '../../src/model/snapshot/special-tokens.js';

export const LLAMA_ONNX = 'onnx/model.onnx';
const DATA_FILE = 'model.onnx_data';

export interface LlamaExport {
  dir: string;
  llm: LlmGeometry;
  bos: number;
  eos: number[];
  pad: number;
}

const pastName = (i: number, kv: 'key' | 'value') => `past_key_values.${i}.${kv}`;
const presentName = (i: number, kv: 'key' | 'value') => `present.${i}.${kv}`;

/** Rewires a graph built by `buildDecoderGraph` to the transformers.js decoder-only I/O (see the file comment). */
export function adaptToLlamaIo(g: GraphBuilder, llm: LlmGeometry): void {
  const F = DataType.FLOAT;
  const kvShape = (seq: string) => ['batch_size', llm.kvHeads, seq, llm.headDim];
  const head: typeof g.nodes = [];
  const emit = (list: typeof g.nodes, opType: string, inputs: string[], output: string, attributes = {}) =>
    list.push({ opType, name: g.fresh(`llama_io_${opType}`), inputs, outputs: [output], attributes });

  const replaced = new Set(['image_embeds']);
  // ConstantOfShape without a value attribute yields float32 zeros: here a [0, hidden] tensor.
  emit(head, 'ConstantOfShape', [g.i64([0, llm.hidden])], 'image_embeds');
  for (let i = 0; i < llm.layers; i++) {
    for (const kv of ['key', 'value'] as const) {
      const past = g.input(pastName(i, kv), F, kvShape('past_sequence_length'));
      const prefix = layerName(kv === 'key' ? DECODER_LAYER_NAMES.prefixKey : DECODER_LAYER_NAMES.prefixValue, i);
      const ours = layerName(kv === 'key' ? DECODER_LAYER_NAMES.pastKey : DECODER_LAYER_NAMES.pastValue, i);
      emit(head, 'Slice', [past, g.i64([0]), g.i64([0]), g.i64([2])], prefix);
      emit(head, 'Identity', [past], ours);
      replaced.add(prefix).add(ours);
    }
  }
  // The new nodes read only graph inputs and initializers: put them first (nodes stay topologically sorted).
  g.nodes.unshift(...head);
  const keepInputs = g.inputs.filter((v) => !replaced.has(v.name));
  g.inputs.splice(0, g.inputs.length, ...keepInputs);

  const tail: typeof g.nodes = [];
  const outputs: typeof g.outputs = [];
  const logitsNode = g.nodes.find((n) => n.outputs.includes('logits'));
  if (!logitsNode) throw new Error('decoder graph has no logits node');
  logitsNode.outputs = logitsNode.outputs.map((o) => (o === 'logits' ? 'logits_last' : o));
  emit(tail, 'Unsqueeze', ['logits_last', g.i64([1])], 'logits');
  outputs.push({ name: 'logits', type: F, shape: ['batch_size', 1, llm.vocab] });
  for (let i = 0; i < llm.layers; i++) {
    for (const kv of ['key', 'value'] as const) {
      const ours = layerName(kv === 'key' ? DECODER_LAYER_NAMES.presentKey : DECODER_LAYER_NAMES.presentValue, i);
      emit(tail, 'Concat', [pastName(i, kv), ours], presentName(i, kv), { axis: attr.i(2) });
      outputs.push({ name: presentName(i, kv), type: F, shape: kvShape('total_sequence_length') });
    }
  }
  g.nodes.push(...tail);
  g.outputs.splice(0, g.outputs.length, ...outputs);
}

/**
 * Writes `<outDir>/{config.json, generation_config.json, onnx/model.onnx, onnx/model.onnx_data}` with the
 * product's weight encoding for `dtype` (int4: the same MatMulNBits weights as `volmo model build --dtype int4`).
 */
export function exportLlamaOnnx(snapshotDir: string, outDir: string, dtype: WeightDtype = 'fp32'): LlamaExport {
  const { config, geometry: geo } = readConfig(snapshotDir);
  const reader = new SafetensorsReader(snapshotDir);
  const tokens = resolveSpecialTokens(snapshotDir, config);
  const l = geo.llm;
  mkdirSync(join(outDir, 'onnx'), { recursive: true });
  const dataPath = join(outDir, 'onnx', DATA_FILE);
  rmSync(dataPath, { force: true });
  // Always external data: the 2-layer bench decoder is ~2 GB of fp32 and protobuf caps a file at 2 GiB.
  const g = new GraphBuilder('llama_decoder', { path: dataPath, location: DATA_FILE });
  try {
    buildDecoderGraph(g, new LinearEmitter(g, dtype), reader, geo, tokens.imgContext);
    adaptToLlamaIo(g, l);
    g.save(join(outDir, LLAMA_ONNX), opsets(dtype));
  } catch (err) {
    g.abort();
    throw err;
  }
  const eos = [...new Set([tokens.imEnd, tokens.eos])];
  const llamaConfig = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: l.hidden,
    num_attention_heads: l.heads,
    num_key_value_heads: l.kvHeads,
    head_dim: l.headDim,
    intermediate_size: l.intermediate,
    num_hidden_layers: l.layers,
    vocab_size: l.vocab,
    rope_theta: l.ropeTheta,
    rms_norm_eps: l.eps,
    max_position_embeddings: l.maxPositions,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    bos_token_id: tokens.bos,
    eos_token_id: eos,
    pad_token_id: tokens.pad,
    torch_dtype: 'float32',
    'transformers.js_config': { use_external_data_format: true },
  };
  writeFileSync(join(outDir, 'config.json'), `${JSON.stringify(llamaConfig, null, 2)}\n`);
  const gen = { bos_token_id: tokens.bos, eos_token_id: eos, pad_token_id: tokens.pad, do_sample: false };
  writeFileSync(join(outDir, 'generation_config.json'), `${JSON.stringify(gen, null, 2)}\n`);
  return { dir: outDir, llm: l, bos: tokens.bos, eos, pad: tokens.pad };
}
