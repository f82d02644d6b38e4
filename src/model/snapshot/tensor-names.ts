/** The checkpoint tensor names and shapes of an InternVL-chat model with an InternLM2 LLM (HF layout). */
import type { ModelGeometry } from './config.js';

export type TensorKind = 'linear' | 'bias' | 'normWeight' | 'normBias' | 'layerScale' | 'embedding' | 'head' | 'posEmbedding';

export interface TensorSpec {
  name: string;
  shape: number[];
  kind: TensorKind;
}

export const V = 'vision_model';
export const LM = 'language_model';

export const visionLayerPrefix = (i: number) => `${V}.encoder.layers.${i}`;
export const llmLayerPrefix = (i: number) => `${LM}.model.layers.${i}`;

/** Rows of the fused `wqkv`: per KV head, `groups` query heads then one key and one value head. */
export function wqkvRows(g: ModelGeometry): number {
  const { heads, kvHeads, headDim } = g.llm;
  return (heads + 2 * kvHeads) * headDim;
}

export function tensorSpecs(g: ModelGeometry): TensorSpec[] {
  const v = g.vision;
  const l = g.llm;
  const specs: TensorSpec[] = [
    { name: `${V}.embeddings.class_embedding`, shape: [1, 1, v.hidden], kind: 'posEmbedding' },
    { name: `${V}.embeddings.patch_embedding.weight`, shape: [v.hidden, v.channels, v.patchSize, v.patchSize], kind: 'linear' },
    { name: `${V}.embeddings.patch_embedding.bias`, shape: [v.hidden], kind: 'bias' },
    { name: `${V}.embeddings.position_embedding`, shape: [1, v.grid * v.grid + 1, v.hidden], kind: 'posEmbedding' },
  ];
  for (let i = 0; i < v.layers; i++) {
    const p = visionLayerPrefix(i);
    specs.push(
      { name: `${p}.attn.qkv.weight`, shape: [3 * v.hidden, v.hidden], kind: 'linear' },
      ...(v.qkvBias ? [{ name: `${p}.attn.qkv.bias`, shape: [3 * v.hidden], kind: 'bias' as const }] : []),
      { name: `${p}.attn.proj.weight`, shape: [v.hidden, v.hidden], kind: 'linear' },
      { name: `${p}.attn.proj.bias`, shape: [v.hidden], kind: 'bias' },
      { name: `${p}.mlp.fc1.weight`, shape: [v.intermediate, v.hidden], kind: 'linear' },
      { name: `${p}.mlp.fc1.bias`, shape: [v.intermediate], kind: 'bias' },
      { name: `${p}.mlp.fc2.weight`, shape: [v.hidden, v.intermediate], kind: 'linear' },
      { name: `${p}.mlp.fc2.bias`, shape: [v.hidden], kind: 'bias' },
      { name: `${p}.norm1.weight`, shape: [v.hidden], kind: 'normWeight' },
      { name: `${p}.norm1.bias`, shape: [v.hidden], kind: 'normBias' },
      { name: `${p}.norm2.weight`, shape: [v.hidden], kind: 'normWeight' },
      { name: `${p}.norm2.bias`, shape: [v.hidden], kind: 'normBias' },
      { name: `${p}.ls1`, shape: [v.hidden], kind: 'layerScale' },
      { name: `${p}.ls2`, shape: [v.hidden], kind: 'layerScale' },
    );
  }
  specs.push(
    { name: 'mlp1.0.weight', shape: [g.projectorIn], kind: 'normWeight' },
    { name: 'mlp1.0.bias', shape: [g.projectorIn], kind: 'normBias' },
    { name: 'mlp1.1.weight', shape: [l.hidden, g.projectorIn], kind: 'linear' },
    { name: 'mlp1.1.bias', shape: [l.hidden], kind: 'bias' },
    { name: 'mlp1.3.weight', shape: [l.hidden, l.hidden], kind: 'linear' },
    { name: 'mlp1.3.bias', shape: [l.hidden], kind: 'bias' },
    { name: `${LM}.model.tok_embeddings.weight`, shape: [l.vocab, l.hidden], kind: 'embedding' },
  );
  for (let i = 0; i < l.layers; i++) {
    const p = llmLayerPrefix(i);
    specs.push(
      { name: `${p}.attention.wqkv.weight`, shape: [wqkvRows(g), l.hidden], kind: 'linear' },
      { name: `${p}.attention.wo.weight`, shape: [l.hidden, l.heads * l.headDim], kind: 'linear' },
      { name: `${p}.feed_forward.w1.weight`, shape: [l.intermediate, l.hidden], kind: 'linear' },
      { name: `${p}.feed_forward.w3.weight`, shape: [l.intermediate, l.hidden], kind: 'linear' },
      { name: `${p}.feed_forward.w2.weight`, shape: [l.hidden, l.intermediate], kind: 'linear' },
      { name: `${p}.attention_norm.weight`, shape: [l.hidden], kind: 'normWeight' },
      { name: `${p}.ffn_norm.weight`, shape: [l.hidden], kind: 'normWeight' },
    );
  }
  specs.push(
    { name: `${LM}.model.norm.weight`, shape: [l.hidden], kind: 'normWeight' },
    { name: `${LM}.output.weight`, shape: [l.vocab, l.hidden], kind: 'head' },
  );
  return specs;
}

/** Checkpoint tensor names that `tensorSpecs(g)` does not know, sorted (the graphs would leave them out). */
export function unusedTensorNames(names: Iterable<string>, g: ModelGeometry): string[] {
  const known = new Set(tensorSpecs(g).map((s) => s.name));
  return [...names].filter((n) => !known.has(n)).sort();
}
