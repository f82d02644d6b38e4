/**
 * Reference InternLM2 decoder: one sequence, token by token, straight from the HF checkpoint tensors
 * (interleaved `wqkv` read in place, the way modeling_internlm2.py's rearrange does). No ONNX involved.
 */
import type { ModelGeometry } from '../../../src/model/snapshot/config.js';
import type { SafetensorsReader } from '../../../src/model/snapshot/safetensors.js';
import { linear, rmsNorm, softmaxInPlace } from './math.js';

interface LayerWeights {
  wqkv: Float32Array;
  wo: Float32Array;
  w1: Float32Array;
  w2: Float32Array;
  w3: Float32Array;
  attnNorm: Float32Array;
  ffnNorm: Float32Array;
}

export class ReferenceDecoder {
  private readonly layers: LayerWeights[] = [];
  private readonly embed: Float32Array;
  private readonly norm: Float32Array;
  private readonly head: Float32Array;
  /** Per layer: rotated keys / values, flat [position][kvHeads * headDim], grown by doubling. */
  private keys: Float32Array[] = [];
  private values: Float32Array[] = [];
  private len = 0;

  constructor(
    reader: SafetensorsReader,
    private readonly geo: ModelGeometry,
    private readonly imgContextId: number,
  ) {
    const p = 'language_model.model';
    this.embed = reader.read(`${p}.tok_embeddings.weight`);
    this.norm = reader.read(`${p}.norm.weight`);
    this.head = reader.read('language_model.output.weight');
    for (let i = 0; i < geo.llm.layers; i++) {
      const q = `${p}.layers.${i}`;
      this.layers.push({
        wqkv: reader.read(`${q}.attention.wqkv.weight`),
        wo: reader.read(`${q}.attention.wo.weight`),
        w1: reader.read(`${q}.feed_forward.w1.weight`),
        w2: reader.read(`${q}.feed_forward.w2.weight`),
        w3: reader.read(`${q}.feed_forward.w3.weight`),
        attnNorm: reader.read(`${q}.attention_norm.weight`),
        ffnNorm: reader.read(`${q}.ffn_norm.weight`),
      });
    }
    this.reset();
  }

  reset(): void {
    const width = this.geo.llm.kvHeads * this.geo.llm.headDim;
    this.keys = this.layers.map(() => new Float32Array(64 * width));
    this.values = this.layers.map(() => new Float32Array(64 * width));
    this.len = 0;
  }

  get length(): number {
    return this.len;
  }

  private append(li: number, k: Float32Array, v: Float32Array, pos: number): void {
    const width = k.length;
    if ((pos + 1) * width > this.keys[li].length) {
      const grow = (a: Float32Array) => {
        const b = new Float32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.keys[li] = grow(this.keys[li]);
      this.values[li] = grow(this.values[li]);
    }
    this.keys[li].set(k, pos * width);
    this.values[li].set(v, pos * width);
  }

  /**
   * Feeds tokens (continuing the cached sequence, positions = cache length + index); image rows are consumed in
   * order at IMG_CONTEXT ids; an IMG_CONTEXT id after the rows run out (a generated one) takes its token
   * embedding, as HF does. Returns the logits of the last token.
   */
  feed(ids: number[], imageRows: Float32Array[] = []): Float32Array {
    const { hidden: H } = this.geo.llm;
    let img = 0;
    let x: Float32Array = new Float32Array(H);
    for (const id of ids) {
      x = id === this.imgContextId && img < imageRows.length ? imageRows[img++] : this.embed.slice(id * H, (id + 1) * H);
      x = this.step(x, this.len);
      this.len += 1;
    }
    return linear(rmsNorm(x, this.norm, this.geo.llm.eps), this.head, this.geo.llm.vocab, H);
  }

  private rope(vec: Float32Array, offset: number, pos: number): void {
    const { headDim: hd, ropeTheta } = this.geo.llm;
    const half = hd / 2;
    for (let j = 0; j < half; j++) {
      const invFreq = Math.fround(1 / Math.fround(ropeTheta ** ((2 * j) / hd)));
      const angle = Math.fround(pos * invFreq);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      const a = vec[offset + j];
      const b = vec[offset + j + half];
      vec[offset + j] = a * c - b * s;
      vec[offset + j + half] = b * c + a * s;
    }
  }

  private step(input: Float32Array, pos: number): Float32Array {
    const { hidden: H, heads, kvHeads, headDim: hd, intermediate: I, eps } = this.geo.llm;
    const groups = heads / kvHeads;
    let x: Float32Array = input;
    this.layers.forEach((L, li) => {
      const qkv = linear(rmsNorm(x, L.attnNorm, eps), L.wqkv, (heads + 2 * kvHeads) * hd, H);
      // qkv viewed as [kvHeads, groups + 2, hd]
      const q = new Float32Array(heads * hd);
      const k = new Float32Array(kvHeads * hd);
      const v = new Float32Array(kvHeads * hd);
      for (let kv = 0; kv < kvHeads; kv++) {
        const base = kv * (groups + 2) * hd;
        for (let s = 0; s < groups; s++) q.set(qkv.subarray(base + s * hd, base + (s + 1) * hd), (kv * groups + s) * hd);
        k.set(qkv.subarray(base + groups * hd, base + (groups + 1) * hd), kv * hd);
        v.set(qkv.subarray(base + (groups + 1) * hd, base + (groups + 2) * hd), kv * hd);
      }
      for (let h = 0; h < heads; h++) this.rope(q, h * hd, pos);
      for (let h = 0; h < kvHeads; h++) this.rope(k, h * hd, pos);
      this.append(li, k, v, pos);
      const n = pos + 1;
      const width = kvHeads * hd;
      const K = this.keys[li];
      const Vv = this.values[li];
      const ctx = new Float32Array(heads * hd);
      const scores = new Float64Array(n);
      const inv = 1 / Math.sqrt(hd);
      for (let h = 0; h < heads; h++) {
        const kvo = Math.floor(h / groups) * hd;
        for (let t = 0; t < n; t++) {
          let s = 0;
          for (let d = 0; d < hd; d++) s += q[h * hd + d] * K[t * width + kvo + d];
          scores[t] = s * inv;
        }
        softmaxInPlace(scores, n);
        for (let t = 0; t < n; t++) {
          const w = scores[t];
          for (let d = 0; d < hd; d++) ctx[h * hd + d] += w * Vv[t * width + kvo + d];
        }
      }
      const attnOut = linear(ctx, L.wo, H, heads * hd);
      x = x.map((val, i) => val + attnOut[i]);
      const h2 = rmsNorm(x, L.ffnNorm, eps);
      const gate = linear(h2, L.w1, I, H);
      const up = linear(h2, L.w3, I, H);
      const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
      const ffn = linear(act, L.w2, H, I);
      x = x.map((val, i) => val + ffn[i]);
    });
    return x;
  }
}
