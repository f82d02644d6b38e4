/**
 * Emits Linear layers (y = x W^T + b, W in HF [out,in] layout) for the requested weight dtype: fp32/fp16
 * MatMul, int4 MatMulNBits (block 32; `accuracyLevel` 4 quantises its activations to int8 per block at run
 * time), int8 DynamicQuantizeMatMul (per-channel int8 weights, activations quantised to uint8 per tensor).
 */
import { attr, type GraphBuilder } from '../onnx/graph-builder.js';
import { DataType, type AttrValue } from '../onnx/onnx-proto.js';
import { Fp16Audit } from './fp16-audit.js';
import { quantizeInt4, quantizeInt8 } from './quantize.js';

/** Weights of the Linear layers of one graph (int8: 7-bit per-channel DynamicQuantizeMatMul, see docs/model-build.md). */
export type WeightDtype = 'fp32' | 'fp16' | 'int4' | 'int8';

export interface LinearOptions {
  /** MatMulNBits `accuracy_level`: 4 = int8 activations (int4 weights only). */
  accuracyLevel?: 4;
}

export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export class LinearEmitter {
  constructor(
    private readonly g: GraphBuilder,
    readonly dtype: WeightDtype,
    private readonly opts: LinearOptions = {},
    /** Range check of everything stored as half (shared by the graphs of one build). */
    readonly audit = new Fp16Audit(),
  ) {}

  /** A float32 tensor stored as `dtype` (fp16 storage + Cast for fp16/int4/int8, plain fp32 otherwise or when fp16 would overflow). */
  tensor(name: string, dims: number[], data: Float32Array, store: 'fp32' | 'fp16' = this.dtype === 'fp32' ? 'fp32' : 'fp16'): string {
    const half = store === 'fp16' ? this.audit.half(name, data) : null;
    if (!half) return this.g.f32(name, dims, data);
    const h = this.g.initializer(name, DataType.FLOAT16, dims, asBytes(half));
    return this.g.op('Cast', [h], { to: attr.i(DataType.FLOAT) });
  }

  /** Embedding lookup: Gather rows of `table` [rows, width] (fp16 storage for fp16/int4 builds unless it would overflow). */
  gather(name: string, table: Float32Array, rows: number, width: number, ids: string): string {
    const half = this.dtype === 'fp32' ? null : this.audit.half(name, table);
    if (!half) return this.g.op('Gather', [this.g.f32(name, [rows, width], table), ids]);
    const h = this.g.initializer(name, DataType.FLOAT16, [rows, width], asBytes(half));
    return this.g.op('Cast', [this.g.op('Gather', [h, ids])], { to: attr.i(DataType.FLOAT) });
  }

  linear(x: string, name: string, w: Float32Array, outF: number, inF: number, bias?: Float32Array, quantize = true): string {
    let y: string;
    if (this.dtype === 'int4' && quantize && inF % 32 === 0) {
      const q = quantizeInt4(w, outF, inF, 32);
      const b = this.g.initializer(`${name}.qweight`, DataType.UINT8, [outF, inF / 32, 16], q.packed);
      const s = this.g.f32(`${name}.scales`, [outF * (inF / 32)], q.scales);
      const attrs: Record<string, AttrValue> = { K: attr.i(inF), N: attr.i(outF), bits: attr.i(4), block_size: attr.i(32) };
      if (this.opts.accuracyLevel) attrs.accuracy_level = attr.i(this.opts.accuracyLevel);
      y = this.g.op('MatMulNBits', [x, b, s], attrs, { domain: 'com.microsoft' });
    } else if (this.dtype === 'int8' && quantize) {
      const q = quantizeInt8(w, outF, inF);
      const b = this.g.initializer(`${name}.qweight`, DataType.INT8, [inF, outF], asBytes(q.values));
      const zero = this.g.initializer(`${name}.zero_point`, DataType.INT8, [outF], new Uint8Array(outF));
      y = this.g.op('DynamicQuantizeMatMul', [x, b, this.g.f32(`${name}.scales`, [outF], q.scales), zero], {}, { domain: 'com.microsoft' });
    } else {
      const wt = this.tensor(`${name}.weight_t`, [inF, outF], transpose(w, outF, inF));
      y = this.g.op('MatMul', [x, wt]);
    }
    return bias ? this.g.op('Add', [y, this.tensor(`${name}.bias`, [outF], bias, 'fp32')]) : y;
  }
}
