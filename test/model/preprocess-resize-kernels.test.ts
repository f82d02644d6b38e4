/**
 * The WebAssembly SIMD kernels and the plain JavaScript loops of the Pillow BICUBIC resize must give the same bytes:
 * preprocess-parity.test.ts holds the default (SIMD) path to Pillow's own output, this holds the fallback to it, on
 * the committed fixtures and on seeded random images and sizes (up and down, one axis unchanged, 1-pixel edges).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { planTiles, PreprocessError } from '../../src/model/preprocess/index.js';
import { pilBicubicResize, pilBicubicResizeJs, pilBicubicResizeMany } from '../../src/model/preprocess/pil-resize.js';
import { simdAvailable } from '../../src/model/preprocess/pil-resize-simd.js';

const DIR = join(import.meta.dirname, '../../fixtures/preprocess');
const META = JSON.parse(readFileSync(join(DIR, 'images.json'), 'utf8')) as {
  images: { name: string; file: string; width: number; height: number; imageSize: number }[];
};

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Index of the first differing byte, or -1. */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * Grey and RGBA go through the JavaScript loops on both paths, so their reference is built from the RGB (SIMD)
 * path instead: resampling is per channel, so each channel resized as a grey image spread over RGB must match.
 */
function viaRgbPath(src: Uint8Array, w: number, h: number, channels: number, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH * channels);
  for (let c = 0; c < channels; c++) {
    const rgb = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = src[i * channels + c];
    const r = pilBicubicResize(rgb, w, h, 3, outW, outH);
    for (let i = 0; i < outW * outH; i++) out[i * channels + c] = r[3 * i];
  }
  return out;
}

describe('Pillow BICUBIC resize: SIMD kernels == JavaScript loops', () => {
  it('WebAssembly SIMD is available on this Node (the fast path is the one measured)', () => {
    expect(simdAvailable()).toBe(true);
  });

  it.each(META.images.map((m) => [m.name, m] as const))('fixture %s, grid and thumbnail sizes', async (_n, m) => {
    const { data, info } = await sharp(readFileSync(join(DIR, m.file))).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    const plan = planTiles(info.width, info.height, { imageSize: m.imageSize });
    for (const [w, h] of [[plan.resizeWidth, plan.resizeHeight], [plan.imageSize, plan.imageSize]]) {
      const fast = pilBicubicResize(data, info.width, info.height, 3, w, h);
      expect(fast.length).toBe(w * h * 3);
      expect(firstDiff(fast, pilBicubicResizeJs(data, info.width, info.height, 3, w, h))).toBe(-1);
    }
  });

  it('seeded random images and sizes: RGB through both paths; grey and RGBA (JavaScript loops) against the RGB path per channel', () => {
    const r = rng(20240611);
    const pick = (max: number) => 1 + Math.floor(r() * max);
    for (let t = 0; t < 120; t++) {
      const channels = t % 6 === 5 ? 4 : t % 6 === 4 ? 1 : 3;
      const w = t < 4 ? 1 : pick(160);
      const h = t < 4 ? pick(40) : pick(160);
      const outW = r() < 0.15 ? w : pick(200);
      const outH = r() < 0.15 ? h : t % 10 === 0 ? 1 : pick(200);
      const src = new Uint8Array(w * h * channels);
      // Noise and hard 0/255 edges exercise the negative lobes and the clip at both ends.
      for (let i = 0; i < src.length; i++) src[i] = t % 2 ? Math.floor(r() * 256) : r() < 0.5 ? 0 : 255;
      const js = pilBicubicResizeJs(src, w, h, channels, outW, outH);
      expect(js.length).toBe(outW * outH * channels);
      const fast = pilBicubicResize(src, w, h, channels, outW, outH);
      expect({ case: [w, h, channels, outW, outH], at: firstDiff(fast, js) }).toEqual({ case: [w, h, channels, outW, outH], at: -1 });
      if (channels !== 3) {
        const ref = viaRgbPath(src, w, h, channels, outW, outH);
        expect({ case: [w, h, channels, outW, outH], vsRgbPath: firstDiff(js, ref) }).toEqual({ case: [w, h, channels, outW, outH], vsRgbPath: -1 });
      }
    }
  });

  it('returns a copy, never the input, when the size does not change', () => {
    const src = Uint8Array.from({ length: 5 * 4 * 3 }, (_, i) => i);
    const out = pilBicubicResize(src, 5, 4, 3, 5, 4);
    expect(out).not.toBe(src);
    expect(Array.from(out)).toEqual(Array.from(src));
  });
});

describe('Pillow BICUBIC resize: bad arguments', () => {
  it('rejects short buffers and non-positive or fractional sizes as bad_options', () => {
    const src = new Uint8Array(4 * 4 * 3);
    expect(() => pilBicubicResize(src, 4, 5, 3, 2, 2)).toThrow(PreprocessError);
    expect(() => pilBicubicResize(src, 4, 4, 3, 0, 2)).toThrow(/cannot resize/);
    expect(() => pilBicubicResizeMany(src, 4, 4, 3, [[2, 2], [2.5, 2]])).toThrow(PreprocessError);
    expect(pilBicubicResizeMany(src, 4, 4, 3, [[2, 2], [3, 1]]).map((o) => o.length)).toEqual([12, 9]);
  });
});
