/**
 * Reads an image's format and declared dimensions from its first bytes, without decoding anything: the
 * guard that lets a 30000×30000 PNG be refused before libvips allocates a single row.
 */
import { LIMITS } from './thresholds.js';
import { ImageRejection } from './rejection.js';

export type SniffedFormat =
  | 'jpeg' | 'png' | 'dicom' | 'gif' | 'webp' | 'tiff' | 'bmp' | 'pdf' | 'jpeg2000' | 'heif' | 'unknown';

export interface ProbeResult {
  readonly format: 'jpeg' | 'png';
  readonly width: number;
  readonly height: number;
  /** Bits per sample as declared (JPEG precision, PNG bit depth). */
  readonly bitDepth: number;
  /** Colour components (JPEG) or PNG colour type mapped to a channel count. */
  readonly channels: number;
}

const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function sniffFormat(b: Uint8Array): SniffedFormat {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'jpeg';
  if (buf.length >= 8 && buf.subarray(0, 8).equals(PNG_SIG)) return 'png';
  if (buf.length >= 132 && buf.toString('latin1', 128, 132) === 'DICM') return 'dicom';
  const head = buf.toString('latin1', 0, Math.min(12, buf.length));
  if (head.startsWith('GIF8')) return 'gif';
  if (head.startsWith('RIFF') && head.slice(8, 12) === 'WEBP') return 'webp';
  if (head.startsWith('II*\0') || head.startsWith('MM\0*')) return 'tiff';
  if (head.startsWith('BM')) return 'bmp';
  if (head.startsWith('%PDF')) return 'pdf';
  if (buf.length >= 4 && buf.readUInt32BE(0) === 0xff4fff51) return 'jpeg2000';
  if (head.slice(4, 12) === 'jP  \r\n\x87\n') return 'jpeg2000';
  if (head.slice(4, 8) === 'ftyp') return 'heif';
  return 'unknown';
}

/** Checks byte size, format and declared dimensions of a JPEG or PNG. Throws ImageRejection otherwise. */
export function probeImage(b: Uint8Array, maxBytes: number = LIMITS.maxImageBytes): ProbeResult {
  if (b.byteLength > maxBytes) {
    throw new ImageRejection('too_large_bytes', `image is ${b.byteLength} bytes, limit ${maxBytes}`);
  }
  if (b.byteLength === 0) throw new ImageRejection('corrupt', 'image is empty');
  const format = sniffFormat(b);
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  let result: ProbeResult;
  if (format === 'jpeg') result = probeJpeg(buf);
  else if (format === 'png') result = probePng(buf);
  else throw new ImageRejection('unsupported_format', `unsupported image format: ${format}`);
  checkDimensions(result.width, result.height);
  return result;
}

export function checkDimensions(width: number, height: number, frames = 1): void {
  if (!(width > 0 && height > 0)) throw new ImageRejection('corrupt', `declared size ${width}x${height} is invalid`);
  if (width > LIMITS.maxSide || height > LIMITS.maxSide || width * height > LIMITS.maxPixels) {
    throw new ImageRejection(
      'too_many_pixels',
      `declared size ${width}x${height} exceeds the limit (${LIMITS.maxPixels} pixels, ${LIMITS.maxSide} per side)`,
    );
  }
  if (Math.min(width, height) < LIMITS.minSide) {
    throw new ImageRejection('too_small', `declared size ${width}x${height} is below ${LIMITS.minSide} px`);
  }
  if (frames > LIMITS.maxFrames) throw new ImageRejection('too_many_pixels', `${frames} frames exceed ${LIMITS.maxFrames}`);
}

function probePng(buf: Buffer): ProbeResult {
  if (buf.length < 33 || buf.toString('latin1', 12, 16) !== 'IHDR' || buf.readUInt32BE(8) !== 13) {
    throw new ImageRejection('corrupt', 'PNG without a valid IHDR header');
  }
  const width = buf.readUInt32BE(16);
  const height = buf.readUInt32BE(20);
  const bitDepth = buf[24];
  const colourType = buf[25];
  const channels = ({ 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 } as Record<number, number>)[colourType];
  if (channels === undefined || ![1, 2, 4, 8, 16].includes(bitDepth)) {
    throw new ImageRejection('corrupt', `PNG header has an invalid colour type ${colourType} / bit depth ${bitDepth}`);
  }
  return { format: 'png', width, height, bitDepth, channels };
}

/** SOF markers: C0–CF except C4 (DHT), C8 (JPG), CC (DAC). */
function isSof(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

function probeJpeg(buf: Buffer): ProbeResult {
  let i = 2;
  while (i + 4 <= buf.length) {
    if (buf[i] !== 0xff) throw new ImageRejection('corrupt', 'JPEG marker structure is broken');
    let marker = buf[i + 1];
    while (marker === 0xff && i + 2 < buf.length) marker = buf[++i + 1]; // fill bytes
    i += 2;
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no length
    if (marker === 0xd9 || marker === 0xda) break; // EOI / SOS before any SOF
    if (i + 2 > buf.length) break;
    const len = buf.readUInt16BE(i);
    if (len < 2) throw new ImageRejection('corrupt', 'JPEG segment with an invalid length');
    if (isSof(marker)) {
      if (i + 8 > buf.length) break;
      const bitDepth = buf[i + 2];
      const height = buf.readUInt16BE(i + 3);
      const width = buf.readUInt16BE(i + 5);
      const channels = buf[i + 7];
      if (marker === 0xc3 || marker === 0xc7 || marker === 0xcb || marker === 0xcf) {
        throw new ImageRejection('unsupported_format', 'lossless JPEG is not supported');
      }
      if (bitDepth !== 8) throw new ImageRejection('unsupported_format', `JPEG with ${bitDepth}-bit samples is not supported`);
      if (height === 0) throw new ImageRejection('unsupported_format', 'JPEG with a DNL-defined height is not supported');
      return { format: 'jpeg', width, height, bitDepth, channels };
    }
    i += len;
  }
  throw new ImageRejection('corrupt', 'JPEG has no frame header (SOF) before its scan data');
}
