/**
 * Gradability gate for fundus photographs: too dark, too blurred, no fundus field, no optic disc.
 * Works on a copy shrunk to GRADABILITY.analysisSide pixels, so it costs a few milliseconds per image.
 */
import type { Sharp } from 'sharp';
import type { Gradability } from '../evidence/types.js';
import { GRADABILITY as G } from './thresholds.js';

export type UngradableReason = 'no_fundus' | 'too_dark' | 'too_blurred' | 'no_disc';

export interface FundusMetrics {
  /** Fraction of pixels inside the camera field (non-background). */
  fieldFraction: number;
  /** Mean luma (0–255) inside the field. */
  fieldMeanLuma: number;
  /** 99th percentile luma over the whole image. */
  p99Luma: number;
  /** 1000 × var(Laplacian of green) / (mean green)², inside the eroded field (brightness-independent). */
  sharpness: number;
  /** (max − median) / median of the box-smoothed green inside the field. */
  discContrast: number;
  /** Mean (red − green) inside the field: fundus photographs are red-dominated, OCT/grey images are 0. */
  redExcess: number;
  /** redExcess / fieldMeanLuma: red dominance that does not change with exposure. */
  redDominance: number;
}

/** Shrinks and measures. `img` is not consumed (a clone is used). */
export async function measureFundus(img: Sharp): Promise<FundusMetrics> {
  const { data, info } = await img
    .clone()
    .resize(G.analysisSide, G.analysisSide, { fit: 'inside', withoutEnlargement: true })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return fundusMetrics(data, info.width, info.height, info.channels);
}

/** Pure metrics on interleaved 8-bit pixels (1 or ≥3 channels). */
export function fundusMetrics(data: Uint8Array, w: number, h: number, channels: number): FundusMetrics {
  const n = w * h;
  const luma = new Float32Array(n);
  const green = new Float32Array(n);
  const hist = new Uint32Array(256);
  for (let p = 0; p < n; p++) {
    const i = p * channels;
    const l = channels >= 3 ? 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2] : data[i];
    luma[p] = l;
    green[p] = channels >= 3 ? data[i + 1] : data[i];
    hist[Math.min(255, Math.round(l))]++;
  }
  let acc = 0;
  let p99 = 255;
  for (let v = 0; v < 256; v++) {
    acc += hist[v];
    if (acc >= 0.99 * n) {
      p99 = v;
      break;
    }
  }
  // mask and its integral image (for erosion and box means)
  const W = w + 1;
  const maskI = new Float64Array(W * (h + 1));
  const greenI = new Float64Array(W * (h + 1));
  let field = 0;
  let lumaSum = 0;
  let greenSum = 0;
  let redExcessSum = 0;
  const greenHist = new Uint32Array(256);
  for (let y = 0; y < h; y++) {
    let rowM = 0;
    let rowG = 0;
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      const inField = luma[p] > G.backgroundLuma ? 1 : 0;
      if (inField) {
        field++;
        lumaSum += luma[p];
        greenSum += green[p];
        if (channels >= 3) redExcessSum += data[p * channels] - data[p * channels + 1];
        greenHist[Math.min(255, Math.round(green[p]))]++;
      }
      rowM += inField;
      rowG += inField * green[p];
      maskI[(y + 1) * W + x + 1] = maskI[y * W + x + 1] + rowM;
      greenI[(y + 1) * W + x + 1] = greenI[y * W + x + 1] + rowG;
    }
  }
  const box = (I: Float64Array, x0: number, y0: number, x1: number, y1: number): number =>
    I[y1 * W + x1] - I[y0 * W + x1] - I[y1 * W + x0] + I[y0 * W + x0];
  const fieldFraction = field / n;
  const fieldMeanLuma = field ? lumaSum / field : 0;
  const meanGreen = field ? greenSum / field : 0;

  // sharpness: Laplacian variance where a (2m+1)^2 window is entirely inside the field
  const m = G.edgeMarginPx;
  const side = (2 * m + 1) ** 2;
  let s1 = 0;
  let s2 = 0;
  let cnt = 0;
  for (let y = m + 1; y < h - m - 1; y++) {
    for (let x = m + 1; x < w - m - 1; x++) {
      if (box(maskI, x - m, y - m, x + m + 1, y + m + 1) < side) continue;
      const p = y * w + x;
      const lap = green[p - 1] + green[p + 1] + green[p - w] + green[p + w] - 4 * green[p];
      s1 += lap;
      s2 += lap * lap;
      cnt++;
    }
  }
  const lapVar = cnt ? s2 / cnt - (s1 / cnt) ** 2 : 0;
  const sharpness = meanGreen > 0 ? (1000 * lapVar) / (meanGreen * meanGreen) : 0;

  // optic disc: brightest box-smoothed green inside the field vs the field's median green
  let median = 0;
  for (let v = 0, a = 0; v < 256; v++) {
    a += greenHist[v];
    if (a >= field / 2) {
      median = v;
      break;
    }
  }
  const diameter = Math.sqrt((4 * field) / Math.PI);
  const r = Math.max(2, Math.round((G.discWindowFraction * diameter) / 2));
  let best = 0;
  for (let y = r; y < h - r; y += 2) {
    for (let x = r; x < w - r; x += 2) {
      const count = box(maskI, x - r, y - r, x + r + 1, y + r + 1);
      if (count < 0.9 * (2 * r + 1) ** 2) continue;
      const mean = box(greenI, x - r, y - r, x + r + 1, y + r + 1) / count;
      if (mean > best) best = mean;
    }
  }
  const discContrast = median > 0 ? (best - median) / median : 0;
  const redExcess = field ? redExcessSum / field : 0;
  const redDominance = fieldMeanLuma > 0 ? redExcess / fieldMeanLuma : 0;
  return { fieldFraction, fieldMeanLuma, p99Luma: p99, sharpness, discContrast, redExcess, redDominance };
}

/** Applies the thresholds of GRADABILITY to the metrics. */
export function judgeFundus(mt: FundusMetrics): Gradability {
  const reasons: UngradableReason[] = [];
  if (!hasField(mt)) {
    reasons.push(mt.p99Luma < G.minFieldMeanLuma * 2 ? 'too_dark' : 'no_fundus');
  } else {
    if (mt.fieldMeanLuma < G.minFieldMeanLuma) reasons.push('too_dark');
    if (mt.sharpness < G.minSharpness) reasons.push('too_blurred');
    if (mt.discContrast < G.minDiscContrast) reasons.push('no_disc');
  }
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(mt)) metrics[k] = Math.round(v * 1000) / 1000;
  return { status: reasons.length ? 'ungradable' : 'gradable', reasons, metrics };
}

/** Does it look like a colour fundus photograph: a camera field with a dark surround, red-dominated? */
export function looksLikeFundus(mt: FundusMetrics): boolean {
  return hasField(mt) && mt.fieldFraction <= G.maxFieldFraction && mt.redDominance >= G.minRedDominance;
}

/** Enough non-background pixels to judge at all (below: too dark, or no fundus). */
export function hasField(mt: FundusMetrics): boolean {
  return mt.fieldFraction >= G.minFieldFraction;
}
