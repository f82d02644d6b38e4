/**
 * Plain tensors. Everything in the runtime except `onnx-session.ts` works on these, so that only one
 * file touches onnxruntime-node's `Tensor`.
 */
import { AppError } from '../../errors.js';

export type TensorType = 'float32' | 'int64' | 'float16' | 'int32' | 'bool' | 'uint8';

export type TensorData = Float32Array | BigInt64Array | Int32Array | Uint16Array | Uint8Array;

export interface TensorLike {
  readonly type: TensorType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

/**
 * A value that stays where the execution provider put it (e.g. a WebGPU buffer). It can be fed back as
 * an input and disposed; the Node binding cannot read it back (reading aborts the process), so there is
 * deliberately no download. On the CPU provider every output is plain.
 */
export interface DeviceTensor {
  readonly location: 'device';
  readonly type: TensorType;
  readonly dims: readonly number[];
  dispose(): void;
}

export type FeedValue = TensorLike | DeviceTensor;

export function isDeviceTensor(v: FeedValue): v is DeviceTensor {
  return (v as DeviceTensor).location === 'device';
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function int64(values: readonly number[], dims: readonly number[] = [1, values.length]): TensorLike {
  if (elementCount(dims) !== values.length) {
    throw new AppError('internal', `int64 tensor: ${values.length} values do not fit dims [${dims.join(',')}]`);
  }
  return { type: 'int64', dims, data: BigInt64Array.from(values, (v) => BigInt(v)) };
}

export function float32(data: Float32Array, dims: readonly number[]): TensorLike {
  if (elementCount(dims) !== data.length) {
    throw new AppError('internal', `float32 tensor: ${data.length} values do not fit dims [${dims.join(',')}]`);
  }
  return { type: 'float32', dims, data };
}

/** A float32 tensor with a zero-length axis, e.g. an empty KV cache [B,H,0,D]. */
export function emptyFloat32(dims: readonly number[]): TensorLike {
  return { type: 'float32', dims, data: new Float32Array(elementCount(dims)) };
}

/** Row `row` of a float32 tensor [B, N] as a view (no copy). */
export function rowOf(t: TensorLike, row: number): Float32Array {
  if (t.type !== 'float32' || t.dims.length !== 2) {
    throw new AppError('internal', `expected float32 [B,N], got ${t.type} [${t.dims.join(',')}]`);
  }
  const n = t.dims[1];
  return (t.data as Float32Array).subarray(row * n, (row + 1) * n);
}
