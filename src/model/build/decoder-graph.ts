/**
 * InternLM2 decoder graph with the "split" KV contract (docs/dev/model-contract.md): image-embedding merge,
 * RoPE (rotate_half, base rope_theta), plain-op GQA attention in two parts (read-only prefix keys and
 * [past | new] keys, one softmax), SwiGLU FFN, RMSNorm, logits of the last position only.
 */
import { attr, type GraphBuilder } from '../onnx/graph-builder.js';
import { DataType } from '../onnx/onnx-proto.js';
import type { ModelGeometry } from '../snapshot/config.js';
import type { SafetensorsReader } from '../snapshot/safetensors.js';
import { LM, llmLayerPrefix } from '../snapshot/tensor-names.js';
import { deinterleaveWqkv, fusedQkv } from './deinterleave.js';
import type { LinearEmitter } from './linear.js';

export const DECODER_LAYER_NAMES = {
  prefixKey: 'prefix_key.{i}',
  prefixValue: 'prefix_value.{i}',
  pastKey: 'past_key.{i}',
  pastValue: 'past_value.{i}',
  presentKey: 'present_key.{i}',
  presentValue: 'present_value.{i}',
} as const;

export const layerName = (pattern: string, i: number) => pattern.replace('{i}', String(i));

const INT64_MAX = Number.MAX_SAFE_INTEGER;

export function ropeInvFreq(headDim: number, theta: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let j = 0; j < headDim / 2; j++) out[j] = 1 / theta ** ((2 * j) / headDim);
  return out;
}

function rmsNorm(g: GraphBuilder, x: string, weight: string, eps: number): string {
  const ms = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: attr.ints([-1]), keepdims: attr.i(1) });
  const r = g.op('Div', [x, g.op('Sqrt', [g.op('Add', [ms, g.f32c([eps], [])])])]);
  return g.op('Mul', [r, weight]);
}

function rotate(g: GraphBuilder, x: string, cos: string, sin: string, half: number): string {
  const x1 = g.op('Slice', [x, g.i64([0]), g.i64([half]), g.i64([3])]);
  const x2 = g.op('Slice', [x, g.i64([half]), g.i64([INT64_MAX]), g.i64([3])]);
  const rot = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: attr.i(-1) });
  return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rot, sin])]);
}

/** Scalar (rank-0) element `index` of a 1-D shape tensor. */
function dimOf(g: GraphBuilder, shape: string, index: number): string {
  return g.op('Gather', [shape, g.i64([index], [])], { axis: attr.i(0) });
}

export function buildDecoderGraph(
  g: GraphBuilder,
  lin: LinearEmitter,
  w: SafetensorsReader,
  geo: ModelGeometry,
  imgContextId: number,
): { inputs: string[]; outputs: string[] } {
  const l = geo.llm;
  const H = l.hidden;
  const hd = l.headDim;
  const groups = l.heads / l.kvHeads;
  const F = DataType.FLOAT;
  const I64 = DataType.INT64;

  const inputIds = g.input('input_ids', I64, ['batch', 'seq']);
  const imageEmbeds = g.input('image_embeds', F, ['image_tokens', H]);
  const positionIds = g.input('position_ids', I64, ['batch', 'seq']);
  const attentionMask = g.input('attention_mask', I64, ['batch', 'total']);
  const kvIn: { pk: string; pv: string; gk: string; gv: string }[] = [];
  for (let i = 0; i < l.layers; i++) {
    kvIn.push({
      pk: g.input(layerName(DECODER_LAYER_NAMES.prefixKey, i), F, ['batch', l.kvHeads, 'prefix', hd]),
      pv: g.input(layerName(DECODER_LAYER_NAMES.prefixValue, i), F, ['batch', l.kvHeads, 'prefix', hd]),
      gk: g.input(layerName(DECODER_LAYER_NAMES.pastKey, i), F, ['batch', l.kvHeads, 'past', hd]),
      gv: g.input(layerName(DECODER_LAYER_NAMES.pastValue, i), F, ['batch', l.kvHeads, 'past', hd]),
    });
  }

  // --- embeddings: the first M IMG_CONTEXT positions (row-major order over [B,T]) take the M image rows;
  // every other id, an IMG_CONTEXT id beyond them included (e.g. a generated one), its token embedding, as in HF.
  const idsFlat = g.op('Reshape', [inputIds, g.i64([-1])]);
  const textEmb = lin.gather(`${LM}.tok_embeddings`, w.read(`${LM}.model.tok_embeddings.weight`, [l.vocab, H]), l.vocab, H, idsFlat);
  const isImgId = g.op('Equal', [idsFlat, g.i64([imgContextId], [])]);
  const running = g.op('CumSum', [g.op('Cast', [isImgId], { to: attr.i(I64) }), g.i64([0], [])]);
  const m = dimOf(g, g.op('Shape', [imageEmbeds]), 0);
  const isImg = g.op('And', [isImgId, g.op('LessOrEqual', [running, m])]);
  // Positions that take no image row point at a zero pad row (never selected by the Where below).
  const rowIdx = g.op('Where', [isImg, g.op('Sub', [running, g.i64([1], [])]), m]);
  const padded = g.op('Concat', [imageEmbeds, g.f32c(new Array(H).fill(0), [1, H])], { axis: attr.i(0) });
  const imgRows = g.op('Gather', [padded, rowIdx], { axis: attr.i(0) });
  const merged = g.op('Where', [g.op('Unsqueeze', [isImg, g.i64([1])]), imgRows, textEmb]);
  const idsShape = g.op('Shape', [inputIds]);
  let x = g.op('Reshape', [merged, g.op('Concat', [idsShape, g.i64([H])], { axis: attr.i(0) })]);

  // --- rotary tables [B,1,T,hd]
  const posF = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: attr.i(F) }), g.i64([-1])]);
  const freqs = g.op('Mul', [posF, g.f32(`rope.inv_freq`, [hd / 2], ropeInvFreq(hd, l.ropeTheta))]);
  const embF = g.op('Concat', [freqs, freqs], { axis: attr.i(-1) });
  const cos = g.op('Unsqueeze', [g.op('Cos', [embF]), g.i64([1])]);
  const sin = g.op('Unsqueeze', [g.op('Sin', [embF]), g.i64([1])]);

  // --- additive mask [B,1,groups*T,S]: key s visible to new token t iff mask[b,s]=1 and s <= S-T+t
  const S = dimOf(g, g.op('Shape', [attentionMask]), 1);
  const T = dimOf(g, idsShape, 1);
  const one = g.i64([1], []);
  const zero = g.i64([0], []);
  const kpos = g.op('Range', [zero, S, one]);
  const qpos = g.op('Unsqueeze', [g.op('Add', [g.op('Range', [zero, T, one]), g.op('Sub', [S, T])]), g.i64([1])]);
  const causal = g.op('LessOrEqual', [kpos, qpos]);
  const pad = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: attr.i(DataType.BOOL) }), g.i64([1])]);
  const allowed = g.op('Unsqueeze', [g.op('And', [causal, pad]), g.i64([1])]);
  const bias = g.op('Where', [allowed, g.f32c([0], []), g.f32c([-1e9], [])]);
  const biasTiled = g.op('Tile', [bias, g.i64([1, 1, groups, 1])]);
  const scale = g.f32c([1 / Math.sqrt(hd)], []);
  // prefix length as a 1-D bound for Slice (all layers' prefixes have the same length)
  const prefixLen = g.op('Slice', [g.op('Shape', [kvIn[0].pk]), g.i64([2]), g.i64([3])]);
  const zero1 = g.i64([0]);
  const lastAxis = g.i64([-1]);

  const outputs: string[] = ['logits'];
  for (let i = 0; i < l.layers; i++) {
    const p = llmLayerPrefix(i);
    const h = rmsNorm(g, x, lin.tensor(`${p}.attention_norm.weight`, [H], w.read(`${p}.attention_norm.weight`, [H]), 'fp32'), l.eps);
    const qkvW = fusedQkv(deinterleaveWqkv(w.read(`${p}.attention.wqkv.weight`, [(l.heads + 2 * l.kvHeads) * hd, H]), l.heads, l.kvHeads, hd, H));
    const qkv = lin.linear(h, `${p}.attention.qkv`, qkvW, (l.heads + 2 * l.kvHeads) * hd, H);
    const [q0, k0, v0] = g.opN('Split', [qkv, g.i64([l.heads * hd, l.kvHeads * hd, l.kvHeads * hd])], { axis: attr.i(-1) }, { outputs: 3 });
    const heads = (t: string, n: number) => g.op('Transpose', [g.op('Reshape', [t, g.i64([0, 0, n, hd])])], { perm: attr.ints([0, 2, 1, 3]) });
    const q = rotate(g, heads(q0, l.heads), cos, sin, hd / 2);
    const k = rotate(g, heads(k0, l.kvHeads), cos, sin, hd / 2);
    const v = heads(v0, l.kvHeads);
    const presentK = layerName(DECODER_LAYER_NAMES.presentKey, i);
    const presentV = layerName(DECODER_LAYER_NAMES.presentValue, i);
    g.output(presentK, F, ['batch', l.kvHeads, 'seq', hd], k);
    g.output(presentV, F, ['batch', l.kvHeads, 'seq', hd], v);
    outputs.push(presentK, presentV);
    // Two-part attention: the read-only prefix K/V are used where they lie (never concatenated, which would
    // copy them every step); only the small [past | new] part is concatenated. One softmax over both parts.
    const kRest = g.op('Concat', [kvIn[i].gk, k], { axis: attr.i(2) });
    const vRest = g.op('Concat', [kvIn[i].gv, v], { axis: attr.i(2) });
    const qg = g.op('Reshape', [q, g.i64([0, l.kvHeads, -1, hd])]);
    const qk = (keys: string) => g.op('Mul', [g.op('MatMul', [qg, g.op('Transpose', [keys], { perm: attr.ints([0, 1, 3, 2]) })]), scale]);
    const scores = g.op('Concat', [qk(kvIn[i].pk), qk(kRest)], { axis: attr.i(-1) });
    const probs = g.op('Softmax', [g.op('Add', [scores, biasTiled])], { axis: attr.i(-1) });
    const pProbs = g.op('Slice', [probs, zero1, prefixLen, lastAxis]);
    const rProbs = g.op('Slice', [probs, prefixLen, g.i64([INT64_MAX]), lastAxis]);
    const attnOut = g.op('Add', [g.op('MatMul', [pProbs, kvIn[i].pv]), g.op('MatMul', [rProbs, vRest])]);
    const ctx = g.op('Reshape', [attnOut, g.i64([0, l.heads, -1, hd])]);
    const ctxFlat = g.op('Reshape', [g.op('Transpose', [ctx], { perm: attr.ints([0, 2, 1, 3]) }), g.i64([0, 0, l.heads * hd])]);
    x = g.op('Add', [x, lin.linear(ctxFlat, `${p}.attention.wo`, w.read(`${p}.attention.wo.weight`, [H, l.heads * hd]), H, l.heads * hd)]);

    const h2 = rmsNorm(g, x, lin.tensor(`${p}.ffn_norm.weight`, [H], w.read(`${p}.ffn_norm.weight`, [H]), 'fp32'), l.eps);
    const w13 = new Float32Array(2 * l.intermediate * H);
    w13.set(w.read(`${p}.feed_forward.w1.weight`, [l.intermediate, H]), 0);
    w13.set(w.read(`${p}.feed_forward.w3.weight`, [l.intermediate, H]), l.intermediate * H);
    const gu = lin.linear(h2, `${p}.feed_forward.w13`, w13, 2 * l.intermediate, H);
    const [gate, up] = g.opN('Split', [gu, g.i64([l.intermediate, l.intermediate])], { axis: attr.i(-1) }, { outputs: 2 });
    const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
    x = g.op('Add', [x, lin.linear(act, `${p}.feed_forward.w2`, w.read(`${p}.feed_forward.w2.weight`, [H, l.intermediate]), H, l.intermediate)]);
  }

  const last = g.op('Slice', [x, g.i64([-1]), g.i64([INT64_MAX]), g.i64([1])]);
  const normed = rmsNorm(g, last, g.f32(`${LM}.norm.weight`, [H], w.read(`${LM}.model.norm.weight`, [H])), l.eps);
  const logits = lin.linear(normed, `${LM}.output`, w.read(`${LM}.output.weight`, [l.vocab, H]), l.vocab, H);
  g.output('logits', F, ['batch', l.vocab], g.op('Reshape', [logits, g.i64([0, l.vocab])]));
  // logits must be the first output for readability; reorder so it precedes present_* entries
  g.outputs.unshift(g.outputs.pop()!);

  const inputs = ['input_ids', 'image_embeds', 'position_ids', 'attention_mask'];
  for (let i = 0; i < l.layers; i++) {
    for (const pat of [DECODER_LAYER_NAMES.prefixKey, DECODER_LAYER_NAMES.prefixValue, DECODER_LAYER_NAMES.pastKey, DECODER_LAYER_NAMES.pastValue]) {
      inputs.push(layerName(pat, i));
    }
  }
  return { inputs, outputs };
}
