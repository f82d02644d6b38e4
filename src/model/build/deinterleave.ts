/**
 * InternLM2 stores `attention.wqkv.weight` grouped by KV head: rows viewed as
 * [kvHeads, groups + 2, headDim, hidden] with groups = heads / kvHeads; slots 0..groups-1 are that group's
 * query heads (query head index = kv * groups + slot), slot groups is the key head, slot groups + 1 the value.
 */
export interface SplitQkv {
  q: Float32Array; // [heads * headDim, hidden]
  k: Float32Array; // [kvHeads * headDim, hidden]
  v: Float32Array; // [kvHeads * headDim, hidden]
}

export function deinterleaveWqkv(w: Float32Array, heads: number, kvHeads: number, headDim: number, hidden: number): SplitQkv {
  const groups = heads / kvHeads;
  if (!Number.isInteger(groups)) throw new Error(`heads ${heads} not divisible by kvHeads ${kvHeads}`);
  if (w.length !== (heads + 2 * kvHeads) * headDim * hidden) throw new Error('wqkv size does not match geometry');
  const block = headDim * hidden;
  const q = new Float32Array(heads * block);
  const k = new Float32Array(kvHeads * block);
  const v = new Float32Array(kvHeads * block);
  for (let kv = 0; kv < kvHeads; kv++) {
    const base = kv * (groups + 2) * block;
    for (let s = 0; s < groups; s++) q.set(w.subarray(base + s * block, base + (s + 1) * block), (kv * groups + s) * block);
    k.set(w.subarray(base + groups * block, base + (groups + 1) * block), kv * block);
    v.set(w.subarray(base + (groups + 1) * block, base + (groups + 2) * block), kv * block);
  }
  return { q, k, v };
}

/** [q; k; v] rows concatenated, for a fused projection followed by Split. */
export function fusedQkv(s: SplitQkv): Float32Array {
  const out = new Float32Array(s.q.length + s.k.length + s.v.length);
  out.set(s.q, 0);
  out.set(s.k, s.q.length);
  out.set(s.v, s.q.length + s.k.length);
  return out;
}
