import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { benchConfig } from '../../src/model/bench-snapshot.js';
import { runModelCli } from '../../src/model/cli.js';
import { readManifest } from '../../src/model/manifest.js';
import { parseConfig } from '../../src/model/snapshot/config.js';
import { tensorSpecs } from '../../src/model/snapshot/tensor-names.js';
import { rewriteSnapshotWeights } from './model-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'volmo-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('volmo model CLI', () => {
  it('tiny + build --dtype int4 --external-data produce a verified model directory', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runModelCli(['tiny', join(dir, 'snap')], { logLevel: 'silent' })).toBe(0);
      expect(await runModelCli(['build', join(dir, 'snap'), join(dir, 'out'), '--dtype', 'int4', '--external-data'], { logLevel: 'silent' })).toBe(0);
      const m = readManifest(join(dir, 'out'));
      expect(m.dtype).toBe('int4');
      expect(existsSync(join(dir, 'out', 'decoder.onnx.data'))).toBe(true);
      expect(out.mock.calls.map((c) => String(c[0])).join('')).toMatch(/RANDOM WEIGHTS/);
      expect(await runModelCli(['build', join(dir, 'missing'), join(dir, 'out2')], { logLevel: 'silent' })).toBe(1);
      expect(err.mock.calls.map((c) => String(c[0])).join('')).toMatch(/config.json is missing/);
      expect(await runModelCli(['build', join(dir, 'snap'), join(dir, 'o3'), '--dtype', 'bf16'], { logLevel: 'silent' })).toBe(2);
      expect(await runModelCli(['bench-snapshot', join(dir, 'b')], { logLevel: 'silent' })).toBe(2);
      expect(await runModelCli(['bench-snapshot', join(dir, 'b'), '--layers', '99'], { logLevel: 'silent' })).toBe(2);
      // a checkpoint tensor the model does not use: refused with its name, built with --allow-unused
      const extra = 'language_model.model.layers.0.attention.wqkv.bias';
      rewriteSnapshotWeights(join(dir, 'snap'), () => {}, [{ name: extra, shape: [128], data: new Float32Array(128) }]);
      expect(await runModelCli(['build', join(dir, 'snap'), join(dir, 'o4')], { logLevel: 'silent' })).toBe(1);
      expect(err.mock.calls.map((c) => String(c[0])).join('')).toContain(`does not use: ${extra}`);
      expect(await runModelCli(['build', join(dir, 'snap'), join(dir, 'o4'), '--allow-unused', '--dtype', 'int4'], { logLevel: 'silent' })).toBe(0);
      expect(readManifest(join(dir, 'o4')).unusedTensors).toEqual([extra]);
      expect(await runModelCli(['nope'], { logLevel: 'silent' })).toBe(2);
      expect(await runModelCli([], { logLevel: 'silent' })).toBe(2);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });

  it('bench snapshot config has InternLM2-1.8B / InternViT-300M layer geometry', () => {
    const { geometry: g } = parseConfig(benchConfig({ layers: 2, visionLayers: 1 }));
    expect(g.llm).toMatchObject({ hidden: 2048, heads: 16, kvHeads: 8, headDim: 128, intermediate: 8192, vocab: 92553, layers: 2, ropeTheta: 1e6 });
    expect(g.vision).toMatchObject({ hidden: 1024, heads: 16, intermediate: 4096, imageSize: 448, patchSize: 14, layers: 1 });
    expect(g.tokensPerTile).toBe(256);
    expect(g.projectorIn).toBe(4096);
    expect(g.random).toBe(true);
    const wqkv = tensorSpecs(g).find((s) => s.name === 'language_model.model.layers.0.attention.wqkv.weight');
    expect(wqkv?.shape).toEqual([4096, 2048]);
  });

  it('bench snapshot with the tiny tokenizer takes its special-token ids (inside the bench vocabulary)', () => {
    const { geometry: g } = parseConfig(benchConfig({ layers: 1, tokenizer: true }));
    expect(g.llm.vocab).toBe(92553);
    const plain = parseConfig(benchConfig({ layers: 1 }));
    expect(plain.config.volmo_special_tokens).not.toEqual(parseConfig(benchConfig({ layers: 1, tokenizer: true })).config.volmo_special_tokens);
    expect(parseConfig(benchConfig({ layers: 1, tokenizer: true })).config.volmo_special_tokens).toMatchObject({ imgContext: 802, imEnd: 798 });
  });
});
