/**
 * Reference InternViT + pixel shuffle + mlp1 for one 448 px tile, straight from the HF checkpoint tensors,
 * with plain loops (no ONNX). The pixel-shuffle index map is written out from the view/permute semantics of
 * modeling_internvl_chat.py: out[a2, b2, c4] = x[r*a2 + c4 div (r*C), r*b2 + (c4 mod r*C) div C, c4 mod C] (v2).
 */
import type { ModelGeometry } from '../../../src/model/snapshot/config.js';
import type { SafetensorsReader } from '../../../src/model/snapshot/safetensors.js';
import { gelu, layerNorm, linear, softmaxInPlace } from './math.js';

export class ReferenceVision {
  private readonly t: (name: string) => Float32Array;
  private readonly cache = new Map<string, Float32Array>();

  constructor(
    reader: SafetensorsReader,
    private readonly geo: ModelGeometry,
  ) {
    this.t = (name) => {
      let v = this.cache.get(name);
      if (!v) {
        v = reader.read(name);
        this.cache.set(name, v);
      }
      return v;
    };
  }

  /** pixels: one tile [channels, S, S] (normalised). Returns tokensPerTile rows of LLM hidden size. */
  encodeTile(pixels: Float32Array): Float32Array[] {
    const v = this.geo.vision;
    const { hidden: C, patchSize: P, grid, imageSize: S, channels } = v;
    const e = 'vision_model.embeddings';
    const convW = this.t(`${e}.patch_embedding.weight`);
    const convB = this.t(`${e}.patch_embedding.bias`);
    const pos = this.t(`${e}.position_embedding`);
    let x: Float32Array[] = [this.t(`${e}.class_embedding`).slice()];
    for (let py = 0; py < grid; py++) {
      for (let px = 0; px < grid; px++) {
        const tok = new Float32Array(C);
        for (let c = 0; c < C; c++) {
          let s = convB[c];
          for (let ch = 0; ch < channels; ch++)
            for (let ky = 0; ky < P; ky++)
              for (let kx = 0; kx < P; kx++)
                s += convW[((c * channels + ch) * P + ky) * P + kx] * pixels[(ch * S + py * P + ky) * S + px * P + kx];
          tok[c] = s;
        }
        x.push(tok);
      }
    }
    x = x.map((tok, i) => tok.map((val, c) => val + pos[i * C + c]));

    for (let li = 0; li < v.layers; li++) x = this.layer(x, li);

    // pixel shuffle (drop class token)
    const r = Math.round(1 / this.geo.downsampleRatio);
    const side = grid / r;
    const D = this.geo.projectorIn;
    const body = x.slice(1);
    const out: Float32Array[] = [];
    for (let i = 0; i < side; i++) {
      for (let j = 0; j < side; j++) {
        // v2: token (i, j) = (row block a2, column block b2); v1 swaps them
        const [a2, b2] = this.geo.psVersion === 'v2' ? [i, j] : [j, i];
        const feat = new Float32Array(D);
        for (let c4 = 0; c4 < D; c4++) {
          const a = r * a2 + Math.floor(c4 / (r * C));
          const b = r * b2 + Math.floor((c4 % (r * C)) / C);
          feat[c4] = body[a * grid + b][c4 % C];
        }
        out.push(feat);
      }
    }
    const H = this.geo.llm.hidden;
    return out.map((f) => {
      const n = layerNorm(f, this.t('mlp1.0.weight'), this.t('mlp1.0.bias'), 1e-5);
      const h1 = linear(n, this.t('mlp1.1.weight'), H, D, this.t('mlp1.1.bias')).map(gelu);
      return linear(h1, this.t('mlp1.3.weight'), H, H, this.t('mlp1.3.bias'));
    });
  }

  private layer(x: Float32Array[], li: number): Float32Array[] {
    const v = this.geo.vision;
    const C = v.hidden;
    const hd = v.headDim;
    const p = `vision_model.encoder.layers.${li}`;
    const qkvB = v.qkvBias ? this.t(`${p}.attn.qkv.bias`) : undefined;
    const qkv = x.map((tok) => linear(layerNorm(tok, this.t(`${p}.norm1.weight`), this.t(`${p}.norm1.bias`), v.eps), this.t(`${p}.attn.qkv.weight`), 3 * C, C, qkvB));
    const n = x.length;
    // flat [n, 3C] copy of q|k|v so the attention loops run over contiguous memory
    const flat = new Float32Array(n * 3 * C);
    qkv.forEach((row, t) => flat.set(row, t * 3 * C));
    const ctxFlat = new Float32Array(n * C);
    const scores = new Float64Array(n);
    const inv = 1 / Math.sqrt(hd);
    for (let h = 0; h < v.heads; h++) {
      for (let t = 0; t < n; t++) {
        const qo = t * 3 * C + h * hd;
        for (let s = 0; s < n; s++) {
          const ko = s * 3 * C + C + h * hd;
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += flat[qo + d] * flat[ko + d];
          scores[s] = dot * inv;
        }
        softmaxInPlace(scores, n);
        const oo = t * C + h * hd;
        for (let s = 0; s < n; s++) {
          const vo = s * 3 * C + 2 * C + h * hd;
          const w = scores[s];
          for (let d = 0; d < hd; d++) ctxFlat[oo + d] += w * flat[vo + d];
        }
      }
    }
    const ctx = x.map((_, t) => ctxFlat.subarray(t * C, (t + 1) * C));
    const ls1 = this.t(`${p}.ls1`);
    const ls2 = this.t(`${p}.ls2`);
    return x.map((tok, t) => {
      const a = linear(ctx[t], this.t(`${p}.attn.proj.weight`), C, C, this.t(`${p}.attn.proj.bias`));
      const y = tok.map((val, c) => val + ls1[c] * a[c]);
      const n2 = layerNorm(y, this.t(`${p}.norm2.weight`), this.t(`${p}.norm2.bias`), v.eps);
      const f1 = linear(n2, this.t(`${p}.mlp.fc1.weight`), v.intermediate, C, this.t(`${p}.mlp.fc1.bias`)).map(gelu);
      const f2 = linear(f1, this.t(`${p}.mlp.fc2.weight`), C, v.intermediate, this.t(`${p}.mlp.fc2.bias`));
      return y.map((val, c) => val + ls2[c] * f2[c]);
    });
  }
}
