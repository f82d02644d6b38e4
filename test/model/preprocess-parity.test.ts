/**
 * Pixel parity with Pillow (reference tiles from scripts/preprocess/reference.py, Pillow 9.4 BICUBIC, stored as
 * lossless PNG). The default 'pil' resampler must be bit-exact; the 'sharp' fast path is held to measured bounds.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { normalizeLut, planTiles, preprocessImage, PreprocessError, resizeForPlan } from '../../src/model/preprocess/index.js';

const DIR = join(import.meta.dirname, '../../fixtures/preprocess');
const META = JSON.parse(readFileSync(join(DIR, 'images.json'), 'utf8')) as {
  images: { name: string; file: string; width: number; height: number; imageSize: number; grid: [number, number]; tiles: number }[];
};
const LUT = JSON.parse(readFileSync(join(DIR, 'normalize-lut.json'), 'utf8')) as { mean: number[]; std: number[]; lut: number[][] };
const bytesOf = (file: string): Buffer => readFileSync(join(DIR, file));
const refTiles = async (name: string): Promise<Buffer> => sharp(bytesOf(`${name}.pil-tiles.png`)).raw().toBuffer();

/** Tiles (HWC per tile, stacked) from the grid + thumbnail rasters, in model order. */
function stackTiles(grid: Uint8Array, thumb: Uint8Array | undefined, cols: number, rows: number, size: number): Uint8Array {
  const out = new Uint8Array((cols * rows + (thumb ? 1 : 0)) * size * size * 3);
  for (let t = 0; t < cols * rows; t++) {
    for (let y = 0; y < size; y++) {
      const s = ((Math.floor(t / cols) * size + y) * cols * size + (t % cols) * size) * 3;
      out.set(grid.subarray(s, s + size * 3), ((t * size + y) * size) * 3);
    }
  }
  if (thumb) out.set(thumb, cols * rows * size * size * 3);
  return out;
}

function diffStats(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / a.length };
}

describe('normalisation', () => {
  it('the lookup table equals float32 ToTensor + Normalize computed by numpy, exactly', () => {
    const lut = normalizeLut(LUT.mean, LUT.std);
    for (let c = 0; c < 3; c++) expect(Array.from(lut[c])).toEqual(LUT.lut[c].map(Math.fround));
    expect(() => normalizeLut([0, 0, 0], [1, 0, 1])).toThrow(PreprocessError);
  });
});

describe('resampler "pil" (default) is bit-exact with Pillow BICUBIC', () => {
  it.each(META.images.map((m) => [m.name, m] as const))('%s', async (_n, m) => {
    const out = await preprocessImage(bytesOf(m.file), { imageSize: m.imageSize });
    expect(out.grid).toEqual(m.grid);
    expect(out.tiles).toBe(m.tiles);
    const S = m.imageSize;
    expect(out.pixelValues.length).toBe(m.tiles * 3 * S * S);
    const ref = await refTiles(m.name);
    expect(ref.length).toBe(m.tiles * S * S * 3);
    const lut = LUT.lut.map((l) => Float32Array.from(l));
    // CHW floats vs LUT(reference HWC uint8): every value equal.
    let mismatches = 0;
    for (let t = 0; t < m.tiles; t++) {
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < S * S; p++) {
          if (out.pixelValues[(t * 3 + c) * S * S + p] !== lut[c][ref[(t * S * S + p) * 3 + c]]) mismatches++;
        }
      }
    }
    expect(mismatches).toBe(0);
  });
});

// Measured with sharp 0.35.5 (libvips cubic) vs Pillow 9.4 BICUBIC on these fixtures, grey levels:
//   wide-png (1.6x down, thumb 3.6-4.7x): max 14, mean 0.27; square-jpeg (4.5x / 8.9x down, shrink-on-load): max 23,
//   mean 0.56; tall-png-upscale (1.2-2.2x up): max 192, mean 10.6; fundus-like-jpeg at 448 (grid ~1.1x up,
//   thumbnail 2.7x down): max 179 (grid) / 14 (thumbnail), mean 1.19. Upscaling in libvips is offset against Pillow.
const SHARP_BOUNDS: Record<string, { max: number; mean: number }> = {
  'wide-png': { max: 16, mean: 0.35 },
  'square-jpeg': { max: 26, mean: 0.65 },
  'tall-png-upscale': { max: 200, mean: 11.5 },
  'fundus-like-jpeg': { max: 185, mean: 1.35 },
};

describe('resampler "sharp" stays within the measured tolerance of Pillow', () => {
  it.each(META.images.map((m) => [m.name, m] as const))('%s', async (_n, m) => {
    const plan = planTiles(m.width, m.height, { imageSize: m.imageSize });
    const { grid, thumbnail } = await resizeForPlan(bytesOf(m.file), plan, { resampler: 'sharp' });
    const stats = diffStats(stackTiles(grid, thumbnail, plan.grid[0], plan.grid[1], plan.imageSize), await refTiles(m.name));
    expect(stats.max).toBeLessThanOrEqual(SHARP_BOUNDS[m.name].max);
    expect(stats.mean).toBeLessThanOrEqual(SHARP_BOUNDS[m.name].mean);
    expect(stats.mean).toBeGreaterThan(0); // it is an approximation; if this fails, tighten the bounds
  });
});

describe('input handling', () => {
  const wide = META.images[0];

  it('drops alpha like convert("RGB") and expands grey to RGB', async () => {
    const rgb = await sharp(bytesOf(wide.file)).raw().toBuffer({ resolveWithObject: true });
    const rgba = await sharp(rgb.data, { raw: { width: rgb.info.width, height: rgb.info.height, channels: 3 } })
      .joinChannel(Buffer.alloc(rgb.info.width * rgb.info.height, 17), { raw: { width: rgb.info.width, height: rgb.info.height, channels: 1 } })
      .png().toBuffer();
    const a = await preprocessImage(bytesOf(wide.file), { imageSize: 56 });
    const b = await preprocessImage(rgba, { imageSize: 56 });
    expect(b.pixelValues).toEqual(a.pixelValues);
    const grey = await sharp(bytesOf(wide.file)).greyscale().png().toBuffer();
    const g = await preprocessImage(grey, { imageSize: 56 });
    expect(g.tiles).toBe(a.tiles);
    const S2 = 56 * 56; // R and G planes of a grey image normalise the same byte with different mean/std
    expect(g.pixelValues[0]).not.toBe(g.pixelValues[S2]);
  });

  it('rejects garbage, empty and truncated input as unsupported_image', async () => {
    const e = await preprocessImage(new TextEncoder().encode('definitely not an image')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PreprocessError);
    expect(e).toMatchObject({ reason: 'unsupported_image', code: 'unsupported_media_type', status: 415 });
    await expect(preprocessImage(new Uint8Array(0))).rejects.toMatchObject({ reason: 'unsupported_image' });
    const jpg = bytesOf('square-jpeg.jpg');
    await expect(preprocessImage(jpg.subarray(0, 2000), { imageSize: 56 })).rejects.toMatchObject({ reason: 'unsupported_image' });
  });

  it('rejects images above the pixel limit before decoding them', async () => {
    await expect(preprocessImage(bytesOf(wide.file), { maxInputPixels: 100_000 })).rejects.toMatchObject({ reason: 'image_too_large', status: 413 });
  });
});
