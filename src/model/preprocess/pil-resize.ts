/**
 * Pillow's BICUBIC `Image.resize` for 8-bit images (libImaging/Resample.c semantics, re-implemented): separable
 * convolution with a support scaled by the downscale factor (antialiased), cubic a = -0.5, coefficients normalised
 * and converted to 22-bit fixed point, horizontal pass first over the needed rows only, uint8 rounding and
 * clipping after each pass, a pass skipped when its axis keeps its size. No `reducing_gap` pre-reduce (InternVL
 * calls `resize((w, h))` without it). Bit-exact with Pillow for RGB input (test/model/preprocess-parity.test.ts).
 *
 * Speed: coefficients are computed once per pass and size. RGB runs through the WebAssembly SIMD kernels of
 * pil-resize-simd.ts (same integer arithmetic; source copied in once for all sizes). The JavaScript loops below are
 * the fallback and serve other channel counts: int32 (`Math.imul`, `| 0`: Pillow's own 32-bit accumulator) over
 * monomorphic typed arrays, RGB interleaved in one loop, the 0..255 clip a store into a Uint8ClampedArray (the
 * shifted sum is already an integer, so the clamped store is exactly Pillow's clip8), and a row-major vertical pass
 * accumulating 4 source rows at a time into an Int32Array. test/model/preprocess-resize-kernels.test.ts holds the
 * two paths to each other.
 */
import { PreprocessError } from './errors.js';
import { simdResizeRgb, type SimdJob } from './pil-resize-simd.js';

const PRECISION_BITS = 32 - 8 - 2;
const SUPPORT = 2;
const ROUND = 1 << (PRECISION_BITS - 1);

function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Fixed-point coefficients of one pass: for output coordinate i, taps kk[i*ksize .. +bounds[2i+1]] from bounds[2i]. */
export interface PassCoeffs {
  ksize: number;
  bounds: Int32Array; // [first input index, tap count] per output coordinate
  kk: Int32Array; // 22-bit fixed-point weights, ksize per output coordinate (unused tail is 0)
}

/** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis (box = whole input). */
export function precomputeCoeffs(inSize: number, outSize: number): PassCoeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** Horizontal pass over `rows` source rows starting at `y0`, 3 interleaved channels. */
function horizontalRgb(src: Uint8Array, width: number, y0: number, rows: number, outW: number, c: PassCoeffs): Uint8Array {
  const { ksize, bounds, kk } = c;
  const out = new Uint8ClampedArray(outW * rows * 3);
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + y0) * width * 3;
    for (let xx = 0; xx < outW; xx++) {
      let k = xx * ksize;
      const kEnd = k + bounds[2 * xx + 1];
      let p = rowIn + bounds[2 * xx] * 3;
      let s0 = ROUND;
      let s1 = ROUND;
      let s2 = ROUND;
      for (; k + 1 < kEnd; k += 2, p += 6) {
        const w0 = kk[k];
        const w1 = kk[k + 1];
        s0 = (s0 + Math.imul(src[p], w0) + Math.imul(src[p + 3], w1)) | 0;
        s1 = (s1 + Math.imul(src[p + 1], w0) + Math.imul(src[p + 4], w1)) | 0;
        s2 = (s2 + Math.imul(src[p + 2], w0) + Math.imul(src[p + 5], w1)) | 0;
      }
      if (k < kEnd) {
        const wk = kk[k];
        s0 = (s0 + Math.imul(src[p], wk)) | 0;
        s1 = (s1 + Math.imul(src[p + 1], wk)) | 0;
        s2 = (s2 + Math.imul(src[p + 2], wk)) | 0;
      }
      out[o] = s0 >> PRECISION_BITS;
      out[o + 1] = s1 >> PRECISION_BITS;
      out[o + 2] = s2 >> PRECISION_BITS;
      o += 3;
    }
  }
  return new Uint8Array(out.buffer, 0, out.length);
}

/** Horizontal pass, any channel count (rare: the service always feeds RGB). */
function horizontalAny(src: Uint8Array, width: number, channels: number, y0: number, rows: number, outW: number, c: PassCoeffs): Uint8Array {
  const { ksize, bounds, kk } = c;
  const out = new Uint8ClampedArray(outW * rows * channels);
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + y0) * width * channels;
    const rowOut = y * outW * channels;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[2 * xx];
      const n = bounds[2 * xx + 1];
      const k = xx * ksize;
      for (let ch = 0; ch < channels; ch++) {
        let ss = ROUND;
        for (let x = 0; x < n; x++) ss = (ss + Math.imul(src[rowIn + (x + xmin) * channels + ch], kk[k + x])) | 0;
        out[rowOut + xx * channels + ch] = ss >> PRECISION_BITS;
      }
    }
  }
  return new Uint8Array(out.buffer, 0, out.length);
}

/** Vertical pass; `img` rows are `rowLen` bytes and start at source row `offset`. Row-major accumulation. */
function vertical(img: Uint8Array, rowLen: number, offset: number, outH: number, c: PassCoeffs): Uint8Array {
  const { ksize, bounds, kk } = c;
  const out = new Uint8ClampedArray(rowLen * outH);
  const acc = new Int32Array(rowLen);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[2 * yy] - offset;
    const n = bounds[2 * yy + 1];
    const k = yy * ksize;
    acc.fill(ROUND);
    let y = 0;
    for (; y + 4 <= n; y += 4) {
      const w0 = kk[k + y];
      const w1 = kk[k + y + 1];
      const w2 = kk[k + y + 2];
      const w3 = kk[k + y + 3];
      const r0 = (ymin + y) * rowLen;
      const r1 = r0 + rowLen;
      const r2 = r1 + rowLen;
      const r3 = r2 + rowLen;
      for (let i = 0; i < rowLen; i++) {
        acc[i] = (acc[i] + Math.imul(img[r0 + i], w0) + Math.imul(img[r1 + i], w1) + Math.imul(img[r2 + i], w2) + Math.imul(img[r3 + i], w3)) | 0;
      }
    }
    for (; y < n; y++) {
      const wk = kk[k + y];
      const r = (ymin + y) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] = (acc[i] + Math.imul(img[r + i], wk)) | 0;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = acc[i] >> PRECISION_BITS;
  }
  return new Uint8Array(out.buffer, 0, out.length);
}

/** Resizes an interleaved 8-bit image (`channels` per pixel) like Pillow's `resize((outW, outH), BICUBIC)`. */
export function pilBicubicResize(
  src: Uint8Array, width: number, height: number, channels: number, outW: number, outH: number,
): Uint8Array {
  return pilBicubicResizeMany(src, width, height, channels, [[outW, outH]])[0];
}

/**
 * Several Pillow BICUBIC resizes of one image (e.g. the tiling grid and the thumbnail), one HWC result per [w, h].
 * Throws PreprocessError 'bad_options' for non-positive or fractional sizes or a buffer shorter than w*h*channels.
 */
export function pilBicubicResizeMany(
  src: Uint8Array, width: number, height: number, channels: number, sizes: readonly (readonly [number, number])[],
): Uint8Array[] {
  const dims = [width, height, channels, ...sizes.flat()];
  if (dims.some((d) => !Number.isInteger(d) || d <= 0) || src.length < width * height * channels) {
    throw new PreprocessError('bad_options', `cannot resize ${src.length} bytes as ${width}x${height}x${channels} to ${sizes.map((s) => s.join('x')).join(', ')}`);
  }
  const verts = sizes.map(([, outH]) => precomputeCoeffs(height, outH));
  if (channels === 3) {
    const jobs = sizes.map(([outW, outH], n): SimdJob => {
      const vert = verts[n];
      const needH = outW !== width;
      const needV = outH !== height;
      const y0 = needH && needV ? vert.bounds[0] : 0;
      const rows = needH && needV ? vert.bounds[(outH - 1) * 2] + vert.bounds[(outH - 1) * 2 + 1] - y0 : height;
      return { outW, outH, y0, rows, hor: needH ? precomputeCoeffs(width, outW) : undefined, vert: needV ? vert : undefined };
    });
    const fast = simdResizeRgb(src, width, height, jobs);
    if (fast) return fast;
  }
  return sizes.map(([outW, outH], n) => pilBicubicResizeJs(src, width, height, channels, outW, outH, verts[n]));
}

/** The same resize in plain JavaScript (fallback without WebAssembly SIMD, and for other channel counts). */
export function pilBicubicResizeJs(
  src: Uint8Array, width: number, height: number, channels: number, outW: number, outH: number,
  vert: PassCoeffs = precomputeCoeffs(height, outH),
): Uint8Array {
  const input = src.constructor === Uint8Array ? src : new Uint8Array(src.buffer, src.byteOffset, src.length);
  const needH = outW !== width;
  const needV = outH !== height;
  const yFirst = vert.bounds[0];
  const yLast = vert.bounds[(outH - 1) * 2] + vert.bounds[(outH - 1) * 2 + 1];
  let img = input;
  if (needH) {
    const hor = precomputeCoeffs(width, outW);
    const rows = needV ? yLast - yFirst : height;
    const y0 = needV ? yFirst : 0;
    img = channels === 3 ? horizontalRgb(input, width, y0, rows, outW, hor) : horizontalAny(input, width, channels, y0, rows, outW, hor);
  }
  if (!needV) return img === input ? input.slice() : img;
  return vertical(img, (needH ? outW : width) * channels, needH ? yFirst : 0, outH, vert);
}
