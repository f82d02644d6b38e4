/**
 * `npm run bench attention`: the decode step's attention alone (one new token against a read-only prefix KV)
 * at InternLM2-1.8B geometry (16 query heads, 8 KV heads, head 128), summed over `--layers` (24 = VOLMO-2B),
 * for the designs the decoder graph could use. Baseline: the volmo-model/1 graph (prefix and new K/V
 * concatenated every step). This is the measurement behind the two-part attention of volmo-model/2
 * (docs/dev/model-contract.md) and behind keeping the KV in fp32 on CPU. Options: --layers=N (24),
 * --contexts=256,1024,2048,4096, --reps=N (7; median).
 */
import * as ort from 'onnxruntime-node';
import { attr, GraphBuilder } from '../src/model/onnx/graph-builder.js';
import { DataType, encodeModel } from '../src/model/onnx/onnx-proto.js';
import type { BenchTable } from './table.js';

const KV_HEADS = 8;
const GROUPS = 2; // query heads per KV head
const HEAD = 128;
const INT64_MAX = Number.MAX_SAFE_INTEGER;

interface Variant {
  name: string;
  kv: 'float32' | 'float16';
  /** Emits one layer's attention output [1, KV_HEADS, GROUPS, HEAD] (float32). */
  layer(g: GraphBuilder, q: string, kNew: string, vNew: string, pk: string, pv: string): string;
}

const transposeLast = (g: GraphBuilder, x: string) => g.op('Transpose', [x], { perm: attr.ints([0, 1, 3, 2]) });
const scaled = (g: GraphBuilder, x: string) => g.op('Mul', [x, g.f32c([1 / Math.sqrt(HEAD)], [])]);
const prefixLen = (g: GraphBuilder, pk: string) => g.op('Slice', [g.op('Shape', [pk]), g.i64([2]), g.i64([3])]);

const VARIANTS: Variant[] = [
  {
    name: 'concat [prefix | new] (volmo-model/1, baseline)',
    kv: 'float32',
    layer(g, q, kNew, vNew, pk, pv) {
      const K = g.op('Concat', [pk, kNew], { axis: attr.i(2) });
      const V = g.op('Concat', [pv, vNew], { axis: attr.i(2) });
      const probs = g.op('Softmax', [scaled(g, g.op('MatMul', [q, transposeLast(g, K)]))], { axis: attr.i(-1) });
      return g.op('MatMul', [probs, V]);
    },
  },
  {
    name: 'two-part, prefix in place (volmo-model/2)',
    kv: 'float32',
    layer(g, q, kNew, vNew, pk, pv) {
      const scores = g.op('Concat', [scaled(g, g.op('MatMul', [q, transposeLast(g, pk)])), scaled(g, g.op('MatMul', [q, transposeLast(g, kNew)]))], { axis: attr.i(-1) });
      const probs = g.op('Softmax', [scores], { axis: attr.i(-1) });
      const P = prefixLen(g, pk);
      const pPart = g.op('Slice', [probs, g.i64([0]), P, g.i64([-1])]);
      const nPart = g.op('Slice', [probs, P, g.i64([INT64_MAX]), g.i64([-1])]);
      return g.op('Add', [g.op('MatMul', [pPart, pv]), g.op('MatMul', [nPart, vNew])]);
    },
  },
  {
    name: 'fp16 prefix KV, MatMul in fp16 (half the bytes)',
    kv: 'float16',
    layer(g, q, kNew, vNew, pk, pv) {
      const h = (x: string) => g.op('Cast', [x], { to: attr.i(DataType.FLOAT16) });
      const f = (x: string) => g.op('Cast', [x], { to: attr.i(DataType.FLOAT) });
      const scores = g.op('Concat', [scaled(g, f(g.op('MatMul', [h(q), transposeLast(g, pk)]))), scaled(g, g.op('MatMul', [q, transposeLast(g, kNew)]))], { axis: attr.i(-1) });
      const probs = g.op('Softmax', [scores], { axis: attr.i(-1) });
      const P = prefixLen(g, pk);
      const pPart = g.op('Slice', [probs, g.i64([0]), P, g.i64([-1])]);
      const nPart = g.op('Slice', [probs, P, g.i64([INT64_MAX]), g.i64([-1])]);
      return g.op('Add', [f(g.op('MatMul', [h(pPart), pv])), g.op('MatMul', [nPart, vNew])]);
    },
  },
  ...(['float32', 'float16'] as const).map((kv): Variant => ({
    name: `com.microsoft GroupQueryAttention, ${kv} KV`,
    kv,
    layer(g, q, kNew, vNew, pk, pv) {
      const t = kv === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
      const cast = (x: string) => (kv === 'float16' ? g.op('Cast', [x], { to: attr.i(t) }) : x);
      const flat = (x: string, heads: number) => cast(g.op('Reshape', [x, g.i64([1, 1, heads * HEAD])]));
      const P = prefixLen(g, pk);
      const i32 = (x: string) => g.op('Cast', [x], { to: attr.i(DataType.INT32) });
      const [out] = g.opN(
        'GroupQueryAttention',
        [flat(q, KV_HEADS * GROUPS), flat(kNew, KV_HEADS), flat(vNew, KV_HEADS), pk, pv, i32(P), i32(g.op('Add', [P, g.i64([1])]))],
        { num_heads: attr.i(KV_HEADS * GROUPS), kv_num_heads: attr.i(KV_HEADS) },
        { domain: 'com.microsoft', outputs: 3 },
      );
      const o = kv === 'float16' ? g.op('Cast', [out], { to: attr.i(DataType.FLOAT) }) : out;
      return g.op('Reshape', [o, g.i64([1, KV_HEADS, GROUPS, HEAD])]);
    },
  })),
];

function buildGraph(v: Variant, layers: number): Uint8Array {
  const g = new GraphBuilder('attention');
  const F = DataType.FLOAT;
  const kvType = v.kv === 'float16' ? DataType.FLOAT16 : F;
  const q = g.input('q', F, [1, KV_HEADS, GROUPS, HEAD]);
  const kNew = g.input('k_new', F, [1, KV_HEADS, 1, HEAD]);
  const vNew = g.input('v_new', F, [1, KV_HEADS, 1, HEAD]);
  let sum: string | null = null;
  for (let i = 0; i < layers; i++) {
    const pk = g.input(`prefix_key.${i}`, kvType, [1, KV_HEADS, 'prefix', HEAD]);
    const pv = g.input(`prefix_value.${i}`, kvType, [1, KV_HEADS, 'prefix', HEAD]);
    const out = v.layer(g, q, kNew, vNew, pk, pv);
    sum = sum ? g.op('Add', [sum, out]) : out;
  }
  g.output('y', F, [1, KV_HEADS, GROUPS, HEAD], sum!);
  return encodeModel({
    graph: { name: g.name, nodes: g.nodes, initializers: g.initializers, inputs: g.inputs, outputs: g.outputs },
    opsets: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
  }).toBytes();
}

function feedsFor(v: Variant, layers: number, ctx: number): Record<string, ort.Tensor> {
  const vec = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);
  const feeds: Record<string, ort.Tensor> = {
    q: new ort.Tensor('float32', vec(KV_HEADS * GROUPS * HEAD), [1, KV_HEADS, GROUPS, HEAD]),
    k_new: new ort.Tensor('float32', vec(KV_HEADS * HEAD), [1, KV_HEADS, 1, HEAD]),
    v_new: new ort.Tensor('float32', vec(KV_HEADS * HEAD), [1, KV_HEADS, 1, HEAD]),
  };
  const n = KV_HEADS * ctx * HEAD;
  // A buffer of its own per layer, K and V, as in the decoder (so the KV is read from memory, not a cache).
  const base = vec(n);
  const half = new Uint16Array(n).fill(0x3800); // 0.5 in fp16
  for (let i = 0; i < layers; i++) {
    for (const name of [`prefix_key.${i}`, `prefix_value.${i}`]) {
      feeds[name] = v.kv === 'float16'
        ? new ort.Tensor('float16', half.slice(), [1, KV_HEADS, ctx, HEAD])
        : new ort.Tensor('float32', base.slice(), [1, KV_HEADS, ctx, HEAD]);
    }
  }
  return feeds;
}

function opt(args: string[], name: string, dflt: string): string {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}

export async function runAttentionBench(args: string[]): Promise<BenchTable[]> {
  const layers = Number(opt(args, 'layers', '24'));
  const contexts = opt(args, 'contexts', '256,1024,2048,4096').split(',').map(Number);
  const reps = Number(opt(args, 'reps', '7'));
  const ms: number[][] = VARIANTS.map(() => []);
  for (const [vi, v] of VARIANTS.entries()) {
    const session = await ort.InferenceSession.create(buildGraph(v, layers), { graphOptimizationLevel: 'all', logSeverityLevel: 3 });
    for (const ctx of contexts) {
      const feeds = feedsFor(v, layers, ctx);
      await session.run(feeds);
      const times: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t0 = performance.now();
        await session.run(feeds);
        times.push(performance.now() - t0);
      }
      ms[vi].push(times.sort((a, b) => a - b)[Math.floor(reps / 2)]);
    }
    await session.release();
  }
  const twoPart = ms[1];
  return [
    {
      title: `Attention of one decode step over ${layers} layers, by prefix length (ms, median of ${reps}; ORT CPU)`,
      columns: ['context', ...VARIANTS.map((v) => v.name), 'baseline / two-part', 'two-part: fp32 KV read GB/s'],
      rows: contexts.map((ctx, c) => {
        const bytes = layers * 2 * KV_HEADS * ctx * HEAD * 4;
        return [ctx, ...ms.map((m) => m[c]), ms[0][c] / twoPart[c], bytes / (twoPart[c] / 1000) / 1e9];
      }),
      notes: [
        'one new token, 16 query heads over 8 KV heads (GQA by folding the 2 query heads of a group into rows), head 128; no weights',
        'fp16 variants hold the prefix KV in fp16 (half the bytes); on this CPU provider fp16 MatMul and fp16 GroupQueryAttention are not faster than fp32',
      ],
    },
  ];
}
