import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, fp16Range } from '../../src/model/snapshot/dtype.js';
import { parseConfig, readConfig } from '../../src/model/snapshot/config.js';
import { stopTokenOf } from '../../src/model/prompt.js';
import { SafetensorsReader, writeSafetensors, writeShardedSafetensors, INDEX_FILE } from '../../src/model/snapshot/safetensors.js';
import { SnapshotError } from '../../src/model/snapshot/snapshot-error.js';
import { tensorSpecs } from '../../src/model/snapshot/tensor-names.js';
import { writeTinySnapshot } from '../../src/model/tiny.js';

const dir = mkdtempSync(join(tmpdir(), 'volmo-snap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sample = Float32Array.from([0, 1, -2.5, 3.140625, 1e-3, 65504, -1e-8, 1 / 3]);

describe('16-bit conversions', () => {
  it('bf16 round trip is exact for bf16-representable values and rounds to nearest even', () => {
    expect(Array.from(bf16ToF32(f32ToBf16(Float32Array.from([0, 1, -2.5, 3.140625]))))).toEqual([0, 1, -2.5, 3.140625]);
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even -> 1; 1 + 3*2^-8 -> 1 + 2^-6
    expect(Array.from(bf16ToF32(f32ToBf16(Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8]))))).toEqual([1, 1 + 2 ** -6]);
    const back = bf16ToF32(f32ToBf16(sample));
    sample.forEach((v, i) => expect(Math.abs(back[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8));
  });
  it('fp16 round trip within half precision, incl. subnormals and overflow', () => {
    const back = f16ToF32(f32ToF16(sample));
    sample.forEach((v, i) => expect(Math.abs(back[i] - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -24)));
    expect(f16ToF32(f32ToF16(Float32Array.from([1e6, 2 ** -20])))[0]).toBe(Infinity);
    expect(f16ToF32(f32ToF16(Float32Array.from([2 ** -20])))[0]).toBe(2 ** -20);
  });
  it('bf16 -> fp16 is exact only in [2^-14, 65504]: counts overflow, subnormal and flushed values', () => {
    // every value is bf16-representable; 3 * 2^-20 needs 2 significant bits, which a half subnormal at 2^-20 still has
    const x = bf16ToF32(f32ToBf16(Float32Array.from([1, -65280, 2 ** -14, 65536, -1e5, 2 ** -20 * (1 + 2 ** -7), 3 * 2 ** -20, 2 ** -30, 0])));
    const half = f32ToF16(x);
    expect(fp16Range(x, half)).toEqual({ overflow: 2, subnormal: 2, flushedToZero: 1 });
    const back = f16ToF32(half);
    expect([back[0], back[1], back[2], back[6]]).toEqual([x[0], x[1], x[2], x[6]]);
    expect(back[5]).not.toBe(x[5]); // 8 significant bits do not fit a subnormal at 2^-20
    expect(back[3]).toBe(Infinity);
  });
});

describe('safetensors', () => {
  const tensors = [
    { name: 'a.weight', shape: [2, 4], data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) },
    { name: 'b.bias', shape: [3], data: Float32Array.from([0.5, -0.25, 1 / 3]) },
    { name: 'c', shape: [1, 1, 2], data: Float32Array.from([-1, 2]) },
  ];
  for (const dtype of ['BF16', 'F16', 'F32'] as const) {
    it(`single-file ${dtype} round trip`, () => {
      const d = join(dir, `single-${dtype}`);
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { recursive: true });
      writeSafetensors(join(d, 'model.safetensors'), tensors, dtype);
      const r = new SafetensorsReader(d);
      expect(r.names().sort()).toEqual(['a.weight', 'b.bias', 'c']);
      expect(r.info('a.weight').dtype).toBe(dtype);
      expect(Array.from(r.read('a.weight', [2, 4]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const b = r.read('b.bias');
      expect(b[2]).toBeCloseTo(1 / 3, dtype === 'F32' ? 7 : 2);
      expect(() => r.read('a.weight', [4, 2])).toThrow(SnapshotError);
      expect(() => r.read('missing')).toThrow(/missing/);
    });
  }

  it('sharded files with an index are read as one snapshot', () => {
    const d = mkdtempSync(join(dir, 'shards-'));
    const files = writeShardedSafetensors(d, tensors, 'BF16', 16);
    expect(files.length).toBeGreaterThan(1);
    const index = JSON.parse(readFileSync(join(d, INDEX_FILE), 'utf8'));
    expect(index.weight_map['c']).toBe(files[files.length - 1]);
    const r = new SafetensorsReader(d);
    expect(r.files).toEqual(files);
    expect(Array.from(r.read('c'))).toEqual([-1, 2]);
    // an index pointing at the wrong shard is rejected
    index.weight_map['c'] = files[0];
    writeFileSync(join(d, INDEX_FILE), JSON.stringify(index));
    expect(() => new SafetensorsReader(d)).toThrow(SnapshotError);
  });

  it('rejects garbage files and missing snapshots with SnapshotError', () => {
    const d = mkdtempSync(join(dir, 'bad-'));
    expect(() => new SafetensorsReader(d)).toThrow(/no model.safetensors/);
    writeFileSync(join(d, 'model.safetensors'), Buffer.from('not a safetensors file at all'));
    expect(() => new SafetensorsReader(d)).toThrow(SnapshotError);
  });
});

describe('tiny snapshot and config parsing', () => {
  const snap = join(dir, 'tiny');
  it('writes the real HF tensor names, bf16, and a config the parser accepts', () => {
    const { tokenizer } = writeTinySnapshot(snap, { seed: 7 });
    const { geometry, config } = readConfig(snap);
    expect(geometry.tokensPerTile).toBe(256);
    expect(geometry.vision.grid).toBe(32);
    expect(geometry.random).toBe(true);
    expect(config.ps_version).toBe('v2');
    const r = new SafetensorsReader(snap);
    const specs = tensorSpecs(geometry);
    expect(r.names().sort()).toEqual(specs.map((s) => s.name).sort());
    for (const s of specs) expect(r.info(s.name)).toMatchObject({ dtype: 'BF16', shape: s.shape });
    expect(r.names()).toContain('language_model.model.layers.1.attention.wqkv.weight');
    expect(r.names()).toContain('vision_model.encoder.layers.0.ls1');
    expect(r.names()).toContain('mlp1.3.bias');
    expect(existsSync(join(snap, 'tokenizer.model'))).toBe(tokenizer);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const a = join(dir, 'tiny-a');
    const b = join(dir, 'tiny-b');
    writeTinySnapshot(a, { seed: 7, tokenizer: false });
    writeTinySnapshot(b, { seed: 8, tokenizer: false });
    const name = 'language_model.model.layers.0.attention.wqkv.weight';
    const x = new SafetensorsReader(snap).read(name);
    expect(new SafetensorsReader(a).read(name)).toEqual(x);
    expect(new SafetensorsReader(b).read(name)).not.toEqual(x);
  });

  it('rejects unsupported or malformed configs', () => {
    const base = JSON.parse(readFileSync(join(snap, 'config.json'), 'utf8'));
    expect(() => parseConfig({ ...base, llm_config: { ...base.llm_config, architectures: ['LlamaForCausalLM'] } })).toThrow(/only InternLM2/);
    expect(() => parseConfig({ ...base, vision_config: { ...base.vision_config, qk_normalization: true } })).toThrow(SnapshotError);
    expect(() => parseConfig({ ...base, llm_config: { ...base.llm_config, hidden_size: 'big' } })).toThrow(/hidden_size/);
    expect(() => parseConfig({ ...base, llm_config: { ...base.llm_config, rope_scaling: { rope_type: 'linear', factor: 2 } } })).toThrow(/rope_scaling linear/);
    expect(parseConfig({ ...base, llm_config: { ...base.llm_config, rope_scaling: { rope_type: 'dynamic', factor: 2 } } }).geometry.llm.ropeScaling).toEqual({ type: 'dynamic', factor: 2 });
    expect(() => parseConfig({ ...base, llm_config: { ...base.llm_config, rope_scaling: { factor: 2 } } })).toThrow(/rope_scaling \(no type\)/);
    const v25 = parseConfig({ ...base, template: 'internvl2_5' }).geometry;
    expect(v25.systemMessage).toContain('书生·万象');
    expect(() => parseConfig({ ...base, template: 'vicuna_v1.1' })).toThrow(/template "vicuna_v1.1"/);
    expect(() => parseConfig({ ...base, vision_config: { ...base.vision_config, hidden_act: 'gelu_pytorch_tanh' } })).toThrow(/only exact gelu/);
    expect(() => parseConfig({ ...base, llm_config: { ...base.llm_config, tie_word_embeddings: true } })).toThrow(/tie_word_embeddings/);
  });

  it('a missing key means the official config class default (InternVisionConfig, InternLM2Config, InternVLChatConfig)', () => {
    const base = JSON.parse(readFileSync(join(snap, 'config.json'), 'utf8'));
    const without = (part: 'vision_config' | 'llm_config' | null, key: string) => {
      const c = structuredClone(base);
      delete (part ? c[part] : c)[key];
      return c;
    };
    // defaults the builder cannot honour are refused, naming the official default
    expect(() => parseConfig(without('vision_config', 'qk_normalization'))).toThrow(/qk_normalization .*default when absent is true/);
    expect(() => parseConfig(without('vision_config', 'norm_type'))).toThrow(/norm_type rms_norm/);
    expect(() => parseConfig(without('llm_config', 'bias'))).toThrow(/LLM linear bias .*default when absent is true/);
    expect(() => parseConfig(without(null, 'template'))).toThrow(/no template/);
    expect(() => parseConfig(without('llm_config', 'architectures'))).toThrow(/architectures/);
    // the others are taken
    expect(parseConfig(without('vision_config', 'qkv_bias')).geometry.vision.qkvBias).toBe(false);
    expect(parseConfig(without('llm_config', 'rms_norm_eps')).geometry.llm.eps).toBe(1e-6);
    expect(parseConfig(without(null, 'use_thumbnail')).geometry.useThumbnail).toBe(false);
    expect(parseConfig(without(null, 'max_dynamic_patch')).geometry.maxDynamicPatch).toBe(6);
    expect(parseConfig(without('llm_config', 'max_position_embeddings')).geometry.llm.maxPositions).toBe(2048);
    expect(parseConfig(without('llm_config', 'rope_theta')).geometry.llm.ropeTheta).toBe(10000);
    expect(parseConfig(without('llm_config', 'num_key_value_heads')).geometry.llm.kvHeads).toBe(base.llm_config.num_attention_heads);
    expect(parseConfig(without(null, 'ps_version')).geometry.psVersion).toBe('v1');
    // vision image_size defaults to 224, which then disagrees with force_image_size 448
    expect(() => parseConfig(without('vision_config', 'image_size'))).toThrow(/force_image_size 448 != vision image_size 224/);
  });

  it('writes rope_scaling.factor as a float (2.0), and refuses an integer factor as InternLM2Config does', () => {
    const text = readFileSync(join(snap, 'config.json'), 'utf8');
    expect(text).toMatch(/"rope_scaling": \{\s*"type": "dynamic",\s*"factor": 2\.0\s*\}/);
    const d = join(dir, 'int-factor');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'config.json'), text.replace('"factor": 2.0', '"factor": 2'));
    expect(() => readConfig(d)).toThrow(/factor must be a float \(2\.0, not 2\)/);
    writeFileSync(join(d, 'config.json'), text.replace('"factor": 2.0', '"factor": 2.5'));
    expect(readConfig(d).geometry.llm.ropeScaling).toEqual({ type: 'dynamic', factor: 2.5 });
  });

  it('stops on the template separator only, as chat() does (<|im_end|> for both templates)', () => {
    expect(stopTokenOf('internlm2-chat')).toBe('<|im_end|>');
    expect(stopTokenOf('internvl2_5')).toBe('<|im_end|>');
  });
});
