/**
 * Weight-only int4 block quantisation in the com.microsoft MatMulNBits layout: for W [N,K] (HF Linear
 * [out,in]), blocks of `blockSize` along K; B uint8 [N, kBlocks, blockSize/2] with the first element of each
 * pair in the low nibble; scales float [N*kBlocks]; symmetric (scale = absmax / 7), implicit zero point 8.
 */
export interface Int4Weight {
  n: number;
  k: number;
  blockSize: number;
  packed: Uint8Array;
  scales: Float32Array;
}

export function quantizeInt4(w: Float32Array, n: number, k: number, blockSize = 32): Int4Weight {
  const kBlocks = Math.ceil(k / blockSize);
  const blob = blockSize / 2;
  const packed = new Uint8Array(n * kBlocks * blob);
  const scales = new Float32Array(n * kBlocks);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < kBlocks; b++) {
      const start = b * blockSize;
      const end = Math.min(start + blockSize, k);
      let amax = 0;
      for (let c = start; c < end; c++) amax = Math.max(amax, Math.abs(w[r * k + c]));
      // value = (q - 8) * scale with q - 8 in [-7, 7] so every element rounds to its nearest step
      const scale = amax / 7 || 1;
      scales[r * kBlocks + b] = scale;
      const base = (r * kBlocks + b) * blob;
      for (let j = 0; j < blockSize; j++) {
        const c = start + j;
        const q = c < end ? Math.min(15, Math.max(0, Math.round(w[r * k + c] / scale) + 8)) : 8;
        packed[base + (j >> 1)] |= j & 1 ? q << 4 : q;
      }
    }
  }
  return { n, k, blockSize, packed, scales };
}

/** Dequantises back to [N,K] float32 (tests, and the reference for int4 tolerance checks). */
export function dequantizeInt4(q: Int4Weight): Float32Array {
  const { n, k, blockSize } = q;
  const kBlocks = Math.ceil(k / blockSize);
  const out = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) {
      const b = Math.floor(c / blockSize);
      const j = c % blockSize;
      const byte = q.packed[(r * kBlocks + b) * (blockSize / 2) + (j >> 1)];
      const code = j & 1 ? byte >> 4 : byte & 15;
      out[r * k + c] = (code - 8) * q.scales[r * kBlocks + b];
    }
  }
  return out;
}

/**
 * Per-output-channel int8 weights for com.microsoft DynamicQuantizeMatMul: for W [N,K] (HF Linear [out,in]),
 * B int8 [K,N] (transposed, as MatMul takes it), symmetric, zero point 0, in a 7-bit range by default
 * (scale = absmax / 63, onnxruntime's `reduce_range`): the activations are quantised to uint8 at run time and
 * on x86 CPUs without VNNI the u8 x s8 kernel adds pairs of products in int16, which saturates with full-range
 * weights (measured here on AVX2: outputs off by 100%+; test/model/build-quantization.test.ts).
 */
export interface Int8Weight {
  n: number;
  k: number;
  /** [K,N] row-major. */
  values: Int8Array;
  scales: Float32Array;
}

export function quantizeInt8(w: Float32Array, n: number, k: number, maxCode = 63): Int8Weight {
  const values = new Int8Array(k * n);
  const scales = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let amax = 0;
    for (let c = 0; c < k; c++) amax = Math.max(amax, Math.abs(w[r * k + c]));
    const scale = amax / maxCode || 1;
    scales[r] = scale;
    for (let c = 0; c < k; c++) values[c * n + r] = Math.max(-maxCode, Math.min(maxCode, Math.round(w[r * k + c] / scale)));
  }
  return { n, k, values, scales };
}

/** Dequantises back to [N,K] float32 (HF layout; tests). */
export function dequantizeInt8(q: Int8Weight): Float32Array {
  const out = new Float32Array(q.n * q.k);
  for (let r = 0; r < q.n; r++) for (let c = 0; c < q.k; c++) out[r * q.k + c] = q.values[c * q.n + r] * q.scales[r];
  return out;
}
