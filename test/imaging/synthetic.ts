/**
 * Synthetic test images made with sharp: a fundus-like photograph (dark surround, orange-red field with
 * vignetting, a bright optic disc, dark vessels, fine texture) and its dark / blurred / disc-less variants.
 */
import sharp from 'sharp';

export interface FundusOptions {
  width?: number;
  height?: number;
  /** Multiplies every pixel (0.1 = badly underexposed). */
  gain?: number;
  /** Gaussian blur sigma in pixels applied before encoding. */
  blurSigma?: number;
  disc?: boolean;
  seed?: number;
  format?: 'jpeg' | 'png';
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Raw RGB pixels of a fundus-like image. */
export function fundusPixels(o: FundusOptions = {}): { data: Buffer; width: number; height: number } {
  const width = o.width ?? 1200;
  const height = o.height ?? 1000;
  const gain = o.gain ?? 1;
  const rand = rng(o.seed ?? 7);
  const cx = width / 2;
  const cy = height / 2;
  const R = height * 0.46;
  const dx = cx + R * 0.38;
  const dy = cy - R * 0.05;
  const dr = R * 0.09;
  // vessel map: stamps along curves leaving the disc
  const vessel = new Float32Array(width * height);
  for (let v = 0; v < 10; v++) {
    const angle = (v / 10) * Math.PI * 2 + rand() * 0.3;
    const bend = (rand() - 0.5) * 1.6;
    const thick = 2 + rand() * 3;
    for (let t = 0; t < 1; t += 0.0015) {
      const a = angle + bend * t;
      const x = dx + Math.cos(a) * t * R * 1.3 - t * t * R * 0.5;
      const y = dy + Math.sin(a) * t * R * 1.1;
      const th = thick * (1 - 0.6 * t);
      for (let yy = Math.floor(y - th); yy <= y + th; yy++) {
        for (let xx = Math.floor(x - th); xx <= x + th; xx++) {
          if (xx < 0 || yy < 0 || xx >= width || yy >= height) continue;
          if ((xx - x) ** 2 + (yy - y) ** 2 <= th * th) vessel[yy * width + xx] = 1;
        }
      }
    }
  }
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const r2 = ((x - cx) ** 2 + (y - cy) ** 2) / (R * R);
      if (r2 > 1) {
        const n = rand() * 4;
        data[i] = n * gain;
        data[i + 1] = n * gain;
        data[i + 2] = n * gain;
        continue;
      }
      const vig = 1 - 0.45 * r2;
      const tex = 1 + (rand() - 0.5) * 0.12 + 0.05 * Math.sin(x * 0.21) * Math.sin(y * 0.17);
      let r = 190 * vig * tex;
      let g = 78 * vig * tex;
      let b = 36 * vig * tex;
      const fov = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (R * 0.08) ** 2));
      r *= 1 - 0.25 * fov;
      g *= 1 - 0.35 * fov;
      if (o.disc !== false) {
        const d = Math.exp(-((x - dx) ** 2 + (y - dy) ** 2) / (2 * dr * dr));
        r += (255 - r) * d;
        g += (225 - g) * d;
        b += (150 - b) * d;
      }
      if (vessel[y * width + x]) {
        r *= 0.7;
        g *= 0.45;
        b *= 0.5;
      }
      data[i] = Math.min(255, r * gain);
      data[i + 1] = Math.min(255, g * gain);
      data[i + 2] = Math.min(255, b * gain);
    }
  }
  return { data, width, height };
}

export async function fundusImage(o: FundusOptions = {}): Promise<Buffer> {
  const { data, width, height } = fundusPixels(o);
  let img = sharp(data, { raw: { width, height, channels: 3 } });
  if (o.blurSigma) img = img.blur(o.blurSigma);
  return o.format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 92 }).toBuffer();
}
