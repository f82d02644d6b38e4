/**
 * Native (uncompressed, little-endian) DICOM pixels of one frame → 8-bit interleaved grey or RGB, the
 * layout sharp's `raw` input takes. Handles MONOCHROME1/2, RGB (both planar configurations) and
 * YBR_FULL, 8- and 16-bit samples (16-bit windowed by Window Center/Width, else by the frame's range).
 */
import type { DataSet, Element } from 'dicom-parser';
import { ImageRejection } from './rejection.js';

export interface EightBitPixels {
  readonly data: Buffer;
  readonly channels: 1 | 3;
}

export function toEightBit(ds: DataSet, el: Element, frameIndex: number, rows: number, cols: number): EightBitPixels {
  const spp = ds.uint16('x00280002') ?? 1;
  const bitsAllocated = ds.uint16('x00280100') ?? 8;
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  const signed = (ds.uint16('x00280103') ?? 0) === 1;
  const planar = ds.uint16('x00280006') ?? 0;
  const photometric = (ds.string('x00280004') ?? (spp === 3 ? 'RGB' : 'MONOCHROME2')).trim().toUpperCase();
  if (spp !== 1 && spp !== 3) throw new ImageRejection('unsupported_pixel_format', `${spp} samples per pixel`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) {
    throw new ImageRejection('unsupported_pixel_format', `${bitsAllocated} bits allocated`);
  }
  const known = spp === 1 ? ['MONOCHROME1', 'MONOCHROME2'] : ['RGB', 'YBR_FULL'];
  if (!known.includes(photometric)) {
    throw new ImageRejection('unsupported_pixel_format', `photometric interpretation ${photometric}`);
  }
  const samples = rows * cols * spp;
  const frameBytes = samples * (bitsAllocated / 8);
  const start = el.dataOffset + frameIndex * frameBytes;
  if (el.length < (frameIndex + 1) * frameBytes || start + frameBytes > ds.byteArray.length) {
    throw new ImageRejection('corrupt', 'pixel data is shorter than rows × columns × frames declare');
  }
  const src = ds.byteArray;
  const out = Buffer.allocUnsafe(samples);
  if (bitsAllocated === 8) {
    out.set(src.subarray(start, start + samples));
  } else {
    const view = new DataView(src.buffer, src.byteOffset + start, frameBytes);
    const mask = bitsStored >= 16 ? 0xffff : (1 << bitsStored) - 1;
    const read = (i: number): number => {
      const raw = view.getUint16(i * 2, true) & mask;
      return signed && raw & (1 << (bitsStored - 1)) ? raw - (1 << bitsStored) : raw;
    };
    let lo: number;
    let hi: number;
    const wc = ds.floatString('x00281050');
    const ww = ds.floatString('x00281051');
    if (wc !== undefined && ww !== undefined && ww > 1) {
      lo = wc - ww / 2;
      hi = wc + ww / 2;
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
    for (let i = 0; i < samples; i++) {
      const v = (read(i) - lo) * scale;
      out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  if (photometric === 'MONOCHROME1') for (let i = 0; i < samples; i++) out[i] = 255 - out[i];
  let data = out;
  if (spp === 3 && planar === 1) {
    const n = rows * cols;
    data = Buffer.allocUnsafe(samples);
    for (let p = 0; p < n; p++) {
      data[p * 3] = out[p];
      data[p * 3 + 1] = out[n + p];
      data[p * 3 + 2] = out[2 * n + p];
    }
  }
  if (photometric === 'YBR_FULL') ybrToRgbInPlace(data);
  return { data, channels: spp === 3 ? 3 : 1 };
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
