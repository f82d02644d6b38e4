/**
 * Vision graph: InternViT (patch conv + class token + absolute positions, pre-norm layers with layer scale,
 * no final norm) -> drop class token -> pixel shuffle (v1/v2) -> mlp1 projector (LayerNorm, Linear, GELU, Linear).
 */
import { attr, type GraphBuilder } from '../onnx/graph-builder.js';
import { DataType } from '../onnx/onnx-proto.js';
import type { ModelGeometry } from '../snapshot/config.js';
import type { SafetensorsReader } from '../snapshot/safetensors.js';
import { V, visionLayerPrefix } from '../snapshot/tensor-names.js';
import type { LinearEmitter } from './linear.js';

function gelu(g: GraphBuilder, x: string): string {
  const e = g.op('Erf', [g.op('Mul', [x, g.f32c([Math.SQRT1_2], [])])]);
  return g.op('Mul', [g.op('Mul', [x, g.f32c([0.5], [])]), g.op('Add', [e, g.f32c([1], [])])]);
}

function layerNorm(g: GraphBuilder, x: string, scale: string, bias: string, eps: number): string {
  return g.op('LayerNormalization', [x, scale, bias], { axis: attr.i(-1), epsilon: attr.f(eps) });
}

export function buildVisionGraph(g: GraphBuilder, lin: LinearEmitter, w: SafetensorsReader, geo: ModelGeometry): void {
  const v = geo.vision;
  const C = v.hidden;
  const S = v.imageSize;
  const P = v.patchSize;
  const grid = v.grid;
  const L = grid * grid + 1;
  const ratio = geo.downsampleRatio;
  const r = Math.round(1 / ratio);

  const pixels = g.input('pixel_values', DataType.FLOAT, ['tiles', v.channels, S, S]);
  const convW = lin.tensor(`${V}.patch_embedding.weight`, [C, v.channels, P, P], w.read(`${V}.embeddings.patch_embedding.weight`, [C, v.channels, P, P]));
  const convB = g.f32(`${V}.patch_embedding.bias`, [C], w.read(`${V}.embeddings.patch_embedding.bias`, [C]));
  const patches = g.op('Conv', [pixels, convW, convB], { kernel_shape: attr.ints([P, P]), strides: attr.ints([P, P]) });
  const tokens = g.op('Transpose', [g.op('Reshape', [patches, g.i64([0, C, -1])])], { perm: attr.ints([0, 2, 1]) });
  const n = g.op('Slice', [g.op('Shape', [pixels]), g.i64([0]), g.i64([1]), g.i64([0])]);
  const clsShape = g.op('Concat', [n, g.i64([1, C])], { axis: attr.i(0) });
  const cls = g.op('Expand', [g.f32(`${V}.class_embedding`, [1, 1, C], w.read(`${V}.embeddings.class_embedding`, [1, 1, C])), clsShape]);
  const pos = lin.tensor(`${V}.position_embedding`, [1, L, C], w.read(`${V}.embeddings.position_embedding`, [1, L, C]), 'fp32');
  let x = g.op('Add', [g.op('Concat', [cls, tokens], { axis: attr.i(1) }), pos]);

  const scale = g.f32c([1 / Math.sqrt(v.headDim)], []);
  const heads = (t: string) => g.op('Transpose', [g.op('Reshape', [t, g.i64([0, 0, v.heads, v.headDim])])], { perm: attr.ints([0, 2, 1, 3]) });
  for (let i = 0; i < v.layers; i++) {
    const p = visionLayerPrefix(i);
    const vec = (name: string, len = C) => g.f32(`${p}.${name}`, [len], w.read(`${p}.${name}`, [len]));
    const h = layerNorm(g, x, vec('norm1.weight'), vec('norm1.bias'), v.eps);
    const qkvBias = v.qkvBias ? w.read(`${p}.attn.qkv.bias`, [3 * C]) : undefined;
    const qkv = lin.linear(h, `${p}.attn.qkv`, w.read(`${p}.attn.qkv.weight`, [3 * C, C]), 3 * C, C, qkvBias);
    const [q, k, vv] = g.opN('Split', [qkv, g.i64([C, C, C])], { axis: attr.i(-1) }, { outputs: 3 });
    const scores = g.op('Mul', [g.op('MatMul', [heads(q), g.op('Transpose', [heads(k)], { perm: attr.ints([0, 1, 3, 2]) })]), scale]);
    const ctx = g.op('MatMul', [g.op('Softmax', [scores], { axis: attr.i(-1) }), heads(vv)]);
    const merged = g.op('Reshape', [g.op('Transpose', [ctx], { perm: attr.ints([0, 2, 1, 3]) }), g.i64([0, 0, C])]);
    const attnOut = lin.linear(merged, `${p}.attn.proj`, w.read(`${p}.attn.proj.weight`, [C, C]), C, C, w.read(`${p}.attn.proj.bias`, [C]));
    x = g.op('Add', [x, g.op('Mul', [attnOut, vec('ls1')])]);
    const h2 = layerNorm(g, x, vec('norm2.weight'), vec('norm2.bias'), v.eps);
    const f1 = lin.linear(h2, `${p}.mlp.fc1`, w.read(`${p}.mlp.fc1.weight`, [v.intermediate, C]), v.intermediate, C, w.read(`${p}.mlp.fc1.bias`, [v.intermediate]));
    const f2 = lin.linear(gelu(g, f1), `${p}.mlp.fc2`, w.read(`${p}.mlp.fc2.weight`, [C, v.intermediate]), C, v.intermediate, w.read(`${p}.mlp.fc2.bias`, [C]));
    x = g.op('Add', [x, g.op('Mul', [f2, vec('ls2')])]);
  }

  // drop the class token, [N, grid, grid, C] -> pixel shuffle -> [N, tokensPerTile, C*r*r]
  const body = g.op('Slice', [x, g.i64([1]), g.i64([L]), g.i64([1])]);
  let s = g.op('Reshape', [body, g.i64([0, grid, grid / r, C * r])]);
  s = g.op('Transpose', [s], { perm: attr.ints([0, 2, 1, 3]) });
  s = g.op('Reshape', [s, g.i64([0, grid / r, grid / r, C * r * r])]);
  if (geo.psVersion === 'v2') s = g.op('Transpose', [s], { perm: attr.ints([0, 2, 1, 3]) });
  s = g.op('Reshape', [s, g.i64([0, geo.tokensPerTile, geo.projectorIn])]);

  const H = geo.llm.hidden;
  const ln = layerNorm(g, s, g.f32('mlp1.0.weight', [geo.projectorIn], w.read('mlp1.0.weight', [geo.projectorIn])), g.f32('mlp1.0.bias', [geo.projectorIn], w.read('mlp1.0.bias', [geo.projectorIn])), 1e-5);
  const m1 = lin.linear(ln, 'mlp1.1', w.read('mlp1.1.weight', [H, geo.projectorIn]), H, geo.projectorIn, w.read('mlp1.1.bias', [H]));
  const m3 = lin.linear(gelu(g, m1), 'mlp1.3', w.read('mlp1.3.weight', [H, H]), H, H, w.read('mlp1.3.bias', [H]));
  g.output('image_embeds', DataType.FLOAT, ['tiles', geo.tokensPerTile, H], m3);
}
