/** Plain Float32Array building blocks for the reference forward pass (clarity over speed). */

/** y[o] = sum_i W[o, i] * x[i] (+ b[o]) for W in HF [out, in] layout; accumulates in double. */
export function linear(x: Float32Array, w: Float32Array, outF: number, inF: number, b?: Float32Array): Float32Array {
  const y = new Float32Array(outF);
  for (let o = 0; o < outF; o++) {
    let s = 0;
    const row = o * inF;
    for (let i = 0; i < inF; i++) s += w[row + i] * x[i];
    y[o] = s + (b ? b[o] : 0);
  }
  return y;
}

export function rmsNorm(x: Float32Array, w: Float32Array, eps: number): Float32Array {
  let ms = 0;
  for (const v of x) ms += v * v;
  const r = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, i) => v * r * w[i]);
}

export function layerNorm(x: Float32Array, w: Float32Array, b: Float32Array, eps: number): Float32Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let varr = 0;
  for (const v of x) varr += (v - mean) ** 2;
  const r = 1 / Math.sqrt(varr / x.length + eps);
  return x.map((v, i) => (v - mean) * r * w[i] + b[i]);
}

/** Exact (erf) GELU; erf by Abramowitz-Stegun 7.1.26 is too coarse, so use a high-precision series/continued form. */
export function gelu(v: number): number {
  return 0.5 * v * (1 + erf(v / Math.SQRT2));
}

export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  if (ax < 2.5) {
    // Maclaurin series, converges quickly for |x| < 2.5
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 80; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // continued fraction for erfc, accurate for larger |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

export function softmaxInPlace(s: Float64Array | Float32Array, n = s.length): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, s[i]);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    s[i] = Math.exp(s[i] - max);
    sum += s[i];
  }
  for (let i = 0; i < n; i++) s[i] /= sum;
}

export function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
