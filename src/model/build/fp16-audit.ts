/**
 * fp16 weight storage with a range check: each tensor about to be stored as half is counted (overflow,
 * subnormal, flushed to zero); a tensor with any value beyond +-65504 is stored fp32 instead, so an fp16
 * build never carries an Inf. The totals go to the manifest (`fp16Storage`).
 */
import { f32ToF16, fp16Range, type Fp16Range } from '../snapshot/dtype.js';

export interface Fp16StorageReport extends Fp16Range {
  /** Values stored as half. */
  values: number;
  /** Tensors (graph initializer names) kept fp32 because a value would overflow. */
  keptFp32: string[];
  /** Per tensor, only those with a non-zero count. */
  tensors: Record<string, Fp16Range>;
}

export class Fp16Audit {
  private readonly r: Fp16StorageReport = { values: 0, overflow: 0, subnormal: 0, flushedToZero: 0, keptFp32: [], tensors: {} };

  /** The half bits of `data`, or null when a value would overflow (store it fp32 then). */
  half(name: string, data: Float32Array): Uint16Array | null {
    const half = f32ToF16(data);
    const range = fp16Range(data, half);
    if (range.overflow || range.subnormal || range.flushedToZero) this.r.tensors[name] = range;
    this.r.overflow += range.overflow;
    if (range.overflow) {
      this.r.keptFp32.push(name);
      return null;
    }
    this.r.values += data.length;
    this.r.subnormal += range.subnormal;
    this.r.flushedToZero += range.flushedToZero;
    return half;
  }

  /** The report, or null when nothing was stored as half (an fp32 build). */
  report(): Fp16StorageReport | null {
    return this.r.values || this.r.keptFp32.length ? structuredClone(this.r) : null;
  }
}
