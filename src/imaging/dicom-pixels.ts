/**
 * Native (uncompressed, little-endian) DICOM pixels of one frame → 8-bit interleaved grey or RGB, the
 * layout sharp's `raw` input takes. Handles MONOCHROME1/2, RGB (both planar configurations) and
 * YBR_FULL, 8- and 16-bit samples (16-bit windowed by Window Center/Width, else by the frame's range).
 * Two steps: `nativeFrame` reads and checks the header (cheap, on the caller's thread); `toEightBit` is the
 * pixel loop, pure and free of dicom-parser, so it can run in a worker thread (pixel-workers.ts).
 */
import type { DataSet, Element } from 'dicom-parser';
import { ImageRejection } from './rejection.js';

export interface EightBitPixels {
  readonly data: Buffer;
  readonly channels: 1 | 3;
}

/** One frame's stored samples and what is needed to turn them into 8-bit pixels. Structured-clone safe. */
export interface NativeFrame {
  /** Exactly this frame's bytes (rows × cols × spp × bitsAllocated/8). */
  readonly bytes: Uint8Array;
  readonly rows: number;
  readonly cols: number;
  readonly spp: 1 | 3;
  readonly bitsAllocated: 8 | 16;
  readonly bitsStored: number;
  readonly signed: boolean;
  readonly planar: number;
  readonly photometric: 'MONOCHROME1' | 'MONOCHROME2' | 'RGB' | 'YBR_FULL';
  /** Window Center/Width (0028,1050/1051) when given with a width above 1. */
  readonly window?: { readonly center: number; readonly width: number };
}

export function nativeFrame(ds: DataSet, el: Element, frameIndex: number, rows: number, cols: number): NativeFrame {
  const spp = ds.uint16('x00280002') ?? 1;
  const bitsAllocated = ds.uint16('x00280100') ?? 8;
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const photometric = (ds.string('x00280004') ?? (spp === 3 ? 'RGB' : 'MONOCHROME2')).trim().toUpperCase();
  if (spp !== 1 && spp !== 3) throw new ImageRejection('unsupported_pixel_format', `${spp} samples per pixel`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) {
    throw new ImageRejection('unsupported_pixel_format', `${bitsAllocated} bits allocated`);
  }
  if (!(bitsStored >= 1 && bitsStored <= bitsAllocated)) {
    throw new ImageRejection('unsupported_pixel_format', `${bitsStored} bits stored of ${bitsAllocated} allocated`);
  }
  const known = spp === 1 ? ['MONOCHROME1', 'MONOCHROME2'] : ['RGB', 'YBR_FULL'];
  if (!known.includes(photometric)) {
    throw new ImageRejection('unsupported_pixel_format', `photometric interpretation ${photometric}`);
  }
  const frameBytes = rows * cols * spp * (bitsAllocated / 8);
  const start = el.dataOffset + frameIndex * frameBytes;
  if (el.length < (frameIndex + 1) * frameBytes || start + frameBytes > ds.byteArray.length) {
    throw new ImageRejection('corrupt', 'pixel data is shorter than rows × columns × frames declare');
  }
  const center = ds.floatString('x00281050');
  const width = ds.floatString('x00281051');
  return {
    bytes: ds.byteArray.subarray(start, start + frameBytes),
    rows,
    cols,
    spp,
    bitsAllocated,
    bitsStored,
    signed: (ds.uint16('x00280103') ?? 0) === 1,
    planar: ds.uint16('x00280006') ?? 0,
    photometric: photometric as NativeFrame['photometric'],
    ...(center !== undefined && width !== undefined && Number.isFinite(center) && width > 1 ? { window: { center, width } } : {}),
  };
}

/** The pixel loop. An 8-bit grey or interleaved-RGB frame is returned as a view of `f.bytes` (no copy). */
export function toEightBit(f: NativeFrame): EightBitPixels {
  const samples = f.rows * f.cols * f.spp;
  let out: Buffer;
  if (f.bitsAllocated === 8) {
    const view = Buffer.from(f.bytes.buffer, f.bytes.byteOffset, samples);
    // Only MONOCHROME1 inversion and interleaved YBR conversion write into `out`: copy for those alone.
    const written = f.photometric === 'MONOCHROME1' || (f.photometric === 'YBR_FULL' && f.planar !== 1);
    out = written ? Buffer.from(view) : view;
  } else {
    out = sixteenToEight(f, samples);
  }
  if (f.photometric === 'MONOCHROME1') for (let i = 0; i < samples; i++) out[i] = 255 - out[i];
  let data = out;
  if (f.spp === 3 && f.planar === 1) {
    const n = f.rows * f.cols;
    data = Buffer.allocUnsafe(samples);
    for (let p = 0; p < n; p++) {
      data[p * 3] = out[p];
      data[p * 3 + 1] = out[n + p];
      data[p * 3 + 2] = out[2 * n + p];
    }
  }
  if (f.photometric === 'YBR_FULL') ybrToRgbInPlace(data);
  return { data, channels: f.spp === 3 ? 3 : 1 };
}

function sixteenToEight(f: NativeFrame, samples: number): Buffer {
  const out = Buffer.allocUnsafe(samples);
  const view = new DataView(f.bytes.buffer, f.bytes.byteOffset, samples * 2);
  const bits = f.bitsStored;
  const mask = bits >= 16 ? 0xffff : (1 << bits) - 1;
  const read = (i: number): number => {
    const raw = view.getUint16(i * 2, true) & mask;
    return f.signed && raw & (1 << (bits - 1)) ? raw - (1 << bits) : raw;
  };
  let lo: number;
  let hi: number;
  if (f.window) {
    lo = f.window.center - f.window.width / 2;
    hi = f.window.center + f.window.width / 2;
  } else {
    lo = Infinity;
    hi = -Infinity;
    for (let i = 0; i < samples; i++) {
      const v = read(i);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  for (let i = 0; i < samples; i++) out[i] = clamp((read(i) - lo) * scale);
  return out;
}

function clamp(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** PS3.3 C.7.6.3.1.2 YBR_FULL → RGB. */
function ybrToRgbInPlace(d: Buffer): void {
  for (let i = 0; i + 2 < d.length; i += 3) {
    const y = d[i];
    const cb = d[i + 1] - 128;
    const cr = d[i + 2] - 128;
    d[i] = clamp(y + 1.402 * cr);
    d[i + 1] = clamp(y - 0.344136 * cb - 0.714136 * cr);
    d[i + 2] = clamp(y + 1.772 * cb);
  }
}
