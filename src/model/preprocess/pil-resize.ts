/**
 * Pillow's BICUBIC `Image.resize` for 8-bit images (libImaging/Resample.c semantics, re-implemented): separable
 * convolution with a support scaled by the downscale factor (antialiased), cubic a = -0.5, coefficients normalised
 * and converted to 22-bit fixed point, horizontal pass first over the needed rows only, uint8 rounding and
 * clipping after each pass. Bit-exact with Pillow for RGB input (measured in test/model/preprocess-parity.test.ts).
 */
const PRECISION_BITS = 32 - 8 - 2;
const SUPPORT = 2;

function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Coeffs {
  ksize: number;
  bounds: Int32Array; // [xmin, count] per output pixel
  kk: Int32Array; // fixed-point weights, ksize per output pixel
}

function precompute(inSize: number, outSize: number): Coeffs {
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

const ROUND = 1 << (PRECISION_BITS - 1);

function clip8(v: number): number {
  const s = v >> PRECISION_BITS;
  return s < 0 ? 0 : s > 255 ? 255 : s;
}

/** Resizes an interleaved 8-bit image (`channels` per pixel) like Pillow's `resize((outW, outH), BICUBIC)`. */
export function pilBicubicResize(
  src: Uint8Array, width: number, height: number, channels: number, outW: number, outH: number,
): Uint8Array {
  const needH = outW !== width;
  const needV = outH !== height;
  const vert = precompute(height, outH);
  let img = src;
  let w = width;
  const yFirst = vert.bounds[0];
  const yLast = vert.bounds[(outH - 1) * 2] + vert.bounds[(outH - 1) * 2 + 1];
  if (needH) {
    const hor = precompute(width, outW);
    const rows = needV ? yLast - yFirst : height;
    const y0 = needV ? yFirst : 0;
    const tmp = new Uint8Array(outW * rows * channels);
    for (let y = 0; y < rows; y++) {
      const rowIn = (y + y0) * width * channels;
      const rowOut = y * outW * channels;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = hor.bounds[xx * 2];
        const n = hor.bounds[xx * 2 + 1];
        const k = xx * hor.ksize;
        if (channels === 3) {
          let s0 = ROUND;
          let s1 = ROUND;
          let s2 = ROUND;
          for (let x = 0, p = rowIn + xmin * 3; x < n; x++, p += 3) {
            const wk = hor.kk[k + x];
            s0 += src[p] * wk;
            s1 += src[p + 1] * wk;
            s2 += src[p + 2] * wk;
          }
          const o = rowOut + xx * 3;
          tmp[o] = clip8(s0);
          tmp[o + 1] = clip8(s1);
          tmp[o + 2] = clip8(s2);
          continue;
        }
        for (let c = 0; c < channels; c++) {
          let ss = ROUND;
          for (let x = 0; x < n; x++) ss += src[rowIn + (x + xmin) * channels + c] * hor.kk[k + x];
          tmp[rowOut + xx * channels + c] = clip8(ss);
        }
      }
    }
    img = tmp;
    w = outW;
  }
  if (!needV) return img === src ? src.slice() : img;
  const offset = needH ? yFirst : 0;
  const out = new Uint8Array(w * outH * channels);
  const rowLen = w * channels;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = vert.bounds[yy * 2] - offset;
    const n = vert.bounds[yy * 2 + 1];
    const k = yy * vert.ksize;
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) {
      let ss = ROUND;
      for (let y = 0; y < n; y++) ss += img[(y + ymin) * rowLen + i] * vert.kk[k + y];
      out[o + i] = clip8(ss);
    }
  }
  return out;
}
