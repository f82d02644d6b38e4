/**
 * torchvision ToTensor + Normalize as a lookup table per channel, in float32 exactly like torch:
 * x = float32(v) / 255, y = (x - mean) / std with float32 mean/std.
 */
import { PreprocessError } from './errors.js';

export const DEFAULT_MEAN = [0.485, 0.456, 0.406] as const;
export const DEFAULT_STD = [0.229, 0.224, 0.225] as const;

export function normalizeLut(mean: readonly number[], std: readonly number[]): Float32Array[] {
  if (mean.length !== 3 || std.length !== 3 || [...mean, ...std].some((v) => !Number.isFinite(v)) || std.some((s) => s === 0)) {
    throw new PreprocessError('bad_options', 'normalisation needs 3 finite means and 3 non-zero stds');
  }
  return [0, 1, 2].map((c) => {
    const m = Math.fround(mean[c]);
    const s = Math.fround(std[c]);
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
    return lut;
  });
}
