/**
 * A scripted decoder that honours the split-KV contract without ONNX. Each token's "KV" is its id, so
 * the next token depends on exactly what the run attended to:
 *   next = (sum of attended ids + position of the last token) mod vocab.
 * `referenceNext` computes the same from a whole sequence (the naive reference).
 */
import type { ModelSession } from '../../src/model/runtime/onnx-session.js';
import type { DecoderSpec } from '../../src/model/runtime/generate.js';
import { contractLayerName } from '../../src/model/runtime/kv.js';
import type { FeedValue, TensorLike } from '../../src/model/runtime/tensor.js';

export const FAKE_SPEC: DecoderSpec = {
  layers: 2, kvHeads: 1, headDim: 1, vocab: 16, hidden: 4, padId: 0, imgContextId: 99, name: contractLayerName,
};

export function referenceNext(seq: readonly number[], vocab = FAKE_SPEC.vocab): number {
  return (seq.reduce((a, b) => a + b, 0) + seq.length - 1) % vocab;
}

export interface FakeSession extends ModelSession {
  /** Per run: new tokens T, prefix length P, past length G, rows B, prefix batch PB (1 = broadcast over rows). */
  runs: { T: number; P: number; G: number; B: number; PB: number }[];
  delayMs: number;
}

export function fakeSession(spec: DecoderSpec = FAKE_SPEC, inputs?: string[]): FakeSession {
  const names = inputs ?? [
    'input_ids', 'position_ids', 'attention_mask', 'image_embeds',
    ...Array.from({ length: spec.layers }, (_, i) => ['prefix_key', 'prefix_value', 'past_key', 'past_value'].map((k) => `${k}.${i}`)).flat(),
  ];
  const s: FakeSession = {
    inputNames: names,
    outputNames: ['logits'],
    executionProvider: 'cpu',
    runs: [],
    delayMs: 0,
    async run(feeds: Record<string, FeedValue>) {
      for (const n of names) if (!(n in feeds)) throw new Error(`missing ${n}`);
      if (s.delayMs) await new Promise((r) => setTimeout(r, s.delayMs));
      const ids = feeds.input_ids as TensorLike;
      const pos = feeds.position_ids as TensorLike;
      const mask = feeds.attention_mask as TensorLike;
      const [B, T] = ids.dims;
      const pk = feeds['prefix_key.0'] as TensorLike;
      const gk = feeds['past_key.0'] as TensorLike;
      const P = pk.dims[2];
      const G = gk.dims[2];
      const PB = pk.dims[0];
      if (PB !== 1 && PB !== B) throw new Error(`prefix batch ${PB} fits neither 1 nor ${B} rows`);
      s.runs.push({ T, P, G, B, PB });
      const logits = new Float32Array(B * spec.vocab);
      const present = new Float32Array(B * T);
      for (let b = 0; b < B; b++) {
        let sum = 0;
        const m = (j: number) => Number((mask.data as BigInt64Array)[b * (P + G + T) + j]);
        for (let j = 0; j < P; j++) if (m(j)) sum += (pk.data as Float32Array)[(PB === 1 ? 0 : b) * P + j];
        for (let j = 0; j < G; j++) if (m(P + j)) sum += (gk.data as Float32Array)[b * G + j];
        for (let t = 0; t < T; t++) {
          const id = Number((ids.data as BigInt64Array)[b * T + t]);
          present[b * T + t] = id;
          if (m(P + G + t)) sum += id;
        }
        const lastPos = Number((pos.data as BigInt64Array)[b * T + T - 1]);
        const next = (sum + lastPos) % spec.vocab;
        // A peaked but not one-hot distribution, so probabilities are non-trivial.
        for (let v = 0; v < spec.vocab; v++) logits[b * spec.vocab + v] = v === next ? 4 : (v % 3) * 0.5;
      }
      const out: Record<string, FeedValue> = { logits: { type: 'float32', dims: [B, spec.vocab], data: logits } };
      for (let i = 0; i < spec.layers; i++) {
        out[`present_key.${i}`] = { type: 'float32', dims: [B, 1, T, 1], data: present.slice() };
        out[`present_value.${i}`] = { type: 'float32', dims: [B, 1, T, 1], data: present.slice() };
      }
      return out;
    },
    async release() {},
  };
  return s;
}
