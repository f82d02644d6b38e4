/**
 * The split KV cache (docs/dev/model-contract.md): a read-only prefix KV (system prompt + images),
 * shared by every question of an exam and never copied back, and a small past KV for the question and
 * generated tokens, grown in JS from each run's `present_*` outputs.
 */
import { AppError } from '../../errors.js';
import { emptyFloat32, isDeviceTensor, type FeedValue, type TensorLike } from './tensor.js';

export interface KvGeometry {
  layers: number;
  kvHeads: number;
  headDim: number;
}

export type KvTensorKind = 'prefix_key' | 'prefix_value' | 'past_key' | 'past_value' | 'present_key' | 'present_value';

/** Tensor names per layer; the default follows the contract (`prefix_key.{i}` ...). */
export type LayerNamer = (kind: KvTensorKind, layer: number) => string;
export const contractLayerName: LayerNamer = (kind, layer) => `${kind}.${layer}`;

/** Builds a namer from patterns such as `{ present_key: 'present.{i}.key' }`; missing kinds use the contract. */
export function layerNamerFrom(patterns: Partial<Record<KvTensorKind, string>> | undefined): LayerNamer {
  return (kind, layer) => patterns?.[kind]?.replace('{i}', String(layer)) ?? contractLayerName(kind, layer);
}

/** Concatenates [B,H,S1,D] and [B,H,S2,D] along the sequence axis. */
export function concatSeq(a: TensorLike, b: TensorLike): TensorLike {
  const [B, H, S1, D] = a.dims;
  const S2 = b.dims[2];
  if (b.dims[0] !== B || b.dims[1] !== H || b.dims[3] !== D) {
    throw new AppError('internal', `KV shapes differ: [${a.dims.join(',')}] vs [${b.dims.join(',')}]`);
  }
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  const out = new Float32Array(B * H * (S1 + S2) * D);
  for (let r = 0; r < B * H; r++) {
    out.set(x.subarray(r * S1 * D, (r + 1) * S1 * D), r * (S1 + S2) * D);
    out.set(y.subarray(r * S2 * D, (r + 1) * S2 * D), r * (S1 + S2) * D + S1 * D);
  }
  return { type: 'float32', dims: [B, H, S1 + S2, D], data: out };
}

/** Stacks batch-1 tensors [1,H,S_b,D] into [B,H,len,D], left-padding each row with zeros. */
export function stackLeftPadded(rows: readonly TensorLike[], len: number): TensorLike {
  const [, H, , D] = rows[0].dims;
  const out = new Float32Array(rows.length * H * len * D);
  rows.forEach((t, b) => {
    const S = t.dims[2];
    const src = t.data as Float32Array;
    for (let h = 0; h < H; h++) {
      out.set(src.subarray(h * S * D, (h + 1) * S * D), ((b * H + h) * len + (len - S)) * D);
    }
  });
  return { type: 'float32', dims: [rows.length, H, len, D], data: out };
}

/** Per-layer keys and values. */
export interface LayerKv {
  keys: FeedValue[];
  values: FeedValue[];
}

/** Reads `present_*` of every layer out of a run's outputs. */
export function presentsOf(outputs: Record<string, FeedValue>, geo: KvGeometry, name: LayerNamer): LayerKv {
  const keys: FeedValue[] = [];
  const values: FeedValue[] = [];
  for (let i = 0; i < geo.layers; i++) {
    const k = outputs[name('present_key', i)];
    const v = outputs[name('present_value', i)];
    if (!k || !v) throw new AppError('internal', `decoder output ${name('present_key', i)} is missing`);
    keys.push(k);
    values.push(v);
  }
  return { keys, values };
}

function disposeAll(kv: LayerKv): void {
  for (const t of [...kv.keys, ...kv.values]) if (isDeviceTensor(t)) t.dispose();
  kv.keys.length = 0;
  kv.values.length = 0;
}

/** The exam prefix KV: fed read-only to every run; `length` = P, `batch` = B. */
export class PrefixKv {
  private disposed = false;

  constructor(
    readonly geometry: KvGeometry,
    readonly batch: number,
    readonly length: number,
    private readonly kv: LayerKv,
  ) {}

  static empty(geo: KvGeometry, batch: number): PrefixKv {
    const dims = [batch, geo.kvHeads, 0, geo.headDim];
    const keys = Array.from({ length: geo.layers }, () => emptyFloat32(dims));
    return new PrefixKv(geo, batch, 0, { keys, values: keys.slice() });
  }

  feeds(name: LayerNamer): Record<string, FeedValue> {
    if (this.disposed) throw new AppError('internal', 'prefix KV used after dispose');
    const f: Record<string, FeedValue> = {};
    for (let i = 0; i < this.geometry.layers; i++) {
      f[name('prefix_key', i)] = this.kv.keys[i];
      f[name('prefix_value', i)] = this.kv.values[i];
    }
    return f;
  }

  /** Whether the KV lives in device memory (then it can only be fed, not stacked or read). */
  get onDevice(): boolean {
    return this.kv.keys.some(isDeviceTensor);
  }

  /** Plain per-layer tensors; used to stack prefixes for a batch (host prefixes only). */
  plain(): { keys: TensorLike[]; values: TensorLike[] } {
    if (this.onDevice) throw new AppError('internal', 'a device-resident prefix KV cannot be read back');
    return { keys: this.kv.keys as TensorLike[], values: this.kv.values as TensorLike[] };
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    disposeAll(this.kv);
  }
}

/** KV of the tokens after the prefix (question + generated), concatenated in JS; small. */
export class PastKv {
  private keys: TensorLike[];
  private values: TensorLike[];
  private len = 0;

  constructor(
    readonly geometry: KvGeometry,
    readonly batch: number,
  ) {
    const dims = [batch, geometry.kvHeads, 0, geometry.headDim];
    this.keys = Array.from({ length: geometry.layers }, () => emptyFloat32(dims));
    this.values = this.keys.slice();
  }

  get length(): number {
    return this.len;
  }

  /** Appends the `present_*` KV of a run's T new tokens (host tensors: runs that feed it keep outputs on the host). */
  async append(presents: LayerKv): Promise<void> {
    const plain = (t: FeedValue): TensorLike => {
      if (isDeviceTensor(t)) throw new AppError('internal', 'past KV needs host outputs; run without outputsOnDevice');
      return t;
    };
    for (let i = 0; i < this.geometry.layers; i++) {
      const k = plain(presents.keys[i]);
      const v = plain(presents.values[i]);
      this.keys[i] = this.len === 0 ? k : concatSeq(this.keys[i], k);
      this.values[i] = this.len === 0 ? v : concatSeq(this.values[i], v);
    }
    this.len += presents.keys[0].dims[2];
  }

  /** Hands the accumulated KV over as a read-only prefix (this cache is left empty). */
  toPrefix(): PrefixKv {
    const prefix = new PrefixKv(this.geometry, this.batch, this.len, { keys: this.keys, values: this.values });
    this.dispose();
    return prefix;
  }

  feeds(name: LayerNamer): Record<string, FeedValue> {
    const f: Record<string, FeedValue> = {};
    for (let i = 0; i < this.geometry.layers; i++) {
      f[name('past_key', i)] = this.keys[i];
      f[name('past_value', i)] = this.values[i];
    }
    return f;
  }

  dispose(): void {
    this.keys = [];
    this.values = [];
    this.len = 0;
  }
}
