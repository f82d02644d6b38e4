/** Conversions between float32 and the 16-bit float formats used by checkpoints and ONNX graphs. */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

/** float32 -> bfloat16 with round-to-nearest-even (NaN stays NaN). */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const b = bits[i];
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) {
      out[i] = (b >>> 16) | 0x40;
      continue;
    }
    out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

export function f16ToF32Scalar(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16ToF32Scalar(src[i]);
  return out;
}

/** float32 -> IEEE half with round-to-nearest-even, overflow to +-Inf, subnormals kept. */
export function f32ToF16Scalar(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r += 1;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r += 1;
  return sign | r;
}

export function f32ToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Scalar(src[i]);
  return out;
}

/** What storing float32 values as IEEE half does to them (bf16 -> fp16 is exact only between 2^-14 and 65504). */
export interface Fp16Range {
  /** Finite values beyond +-65504, the largest half: they would become +-Inf (or be clipped). */
  overflow: number;
  /** Values stored as half subnormals (below 2^-14): fewer significant bits than bf16 had. */
  subnormal: number;
  /** Non-zero values that become +-0 (below ~2^-25). */
  flushedToZero: number;
}

/** Counts the values of `src` that `half` (its f32ToF16 conversion) overflows, makes subnormal or flushes to zero. */
export function fp16Range(src: Float32Array, half: Uint16Array): Fp16Range {
  const r: Fp16Range = { overflow: 0, subnormal: 0, flushedToZero: 0 };
  for (let i = 0; i < src.length; i++) {
    const x = src[i];
    const h = half[i] & 0x7fff;
    if (Math.abs(x) > 65504 && Number.isFinite(x)) r.overflow++;
    else if (h === 0 && x !== 0) r.flushedToZero++;
    else if (h !== 0 && h < 0x400) r.subnormal++;
  }
  return r;
}
