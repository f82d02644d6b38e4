/**
 * An image an analysis used, fetched again for the clinician to look at (the SMART app's thumbnails and
 * larger view) -> a small JPEG. The bytes are decoded the way prepare.ts decodes them (JPEG, PNG, DICOM
 * Part 10: its JPEG frame or its native pixels converted to 8 bits), checked to be the very image the
 * analysis hashed (content-hash.ts; a changed record is refused, not shown as if it were the one analysed),
 * and shrunk with sharp to a bounded side. sharp writes no metadata unless asked: no EXIF, no ICC, no
 * comments, so nothing from the source file travels with it. Nothing is written to disk. No network here.
 */
import sharp from 'sharp';
import { contentHash } from './content-hash.js';
import { decodeDicom } from './dicom-decode.js';
import { sharedPixelPool, type PixelWork } from './pixel-workers.js';
import { probeImage, sniffFormat } from './probe.js';
import { ImageRejection, isImageRejection } from './rejection.js';
import { LIMITS } from './thresholds.js';

export type ViewSize = 'thumb' | 'large';

/** The longest side of each size, in pixels. */
export const VIEW_SIDE: Readonly<Record<ViewSize, number>> = Object.freeze({ thumb: 192, large: 1280 });

/** The image read again is not the one the analysis used (the record was changed since). */
export class ImageNotSame extends Error {
  readonly reason = 'changed';
  constructor() {
    super('the image in the record is not the one the analysis used');
    this.name = 'ImageNotSame';
  }
}

const SHARP_OPTS = { limitInputPixels: LIMITS.maxPixels, failOn: 'warning' as const };

/** The displayable payload of an image file (what prepare.ts hashes): JPEG/PNG as is, DICOM's frame. */
async function payloadOf(bytes: Uint8Array, frame: number | undefined, pixels: PixelWork): Promise<{ payload: Uint8Array; mediaType: 'image/jpeg' | 'image/png' }> {
  if (bytes.byteLength === 0) throw new ImageRejection('corrupt', 'image is empty');
  if (bytes.byteLength > LIMITS.maxDicomBytes) throw new ImageRejection('too_large_bytes', 'image over the byte limit');
  const format = sniffFormat(bytes);
  if (format === 'dicom') {
    const dcm = decodeDicom(bytes, frame === undefined ? {} : { frame });
    if (dcm.frame.kind === 'jpeg') return { payload: dcm.frame.bytes, mediaType: 'image/jpeg' };
    const native = dcm.frame.native;
    const { data, channels } = await pixels.toEightBit(native);
    return { payload: await sharp(data, { raw: { width: native.cols, height: native.rows, channels } }).png({ compressionLevel: 1 }).toBuffer(), mediaType: 'image/png' };
  }
  if (format === 'jpeg' || format === 'png') {
    probeImage(bytes); // declared size within the limits before anything is decoded
    return { payload: bytes, mediaType: format === 'jpeg' ? 'image/jpeg' : 'image/png' };
  }
  throw new ImageRejection('unsupported_format', `unsupported image format: ${format}`);
}

/**
 * `bytes` (as fetched) -> a JPEG no larger than `VIEW_SIDE[size]` on its long side, without metadata.
 * `contentHash`: the analysis's hash of the image (sha256 hex); a different image throws ImageNotSame.
 * Throws ImageRejection for what does not decode.
 */
export async function renderForView(bytes: Uint8Array, opts: { size: ViewSize; contentHash?: string; frame?: number; pixels?: PixelWork }): Promise<Buffer> {
  const { payload, mediaType } = await payloadOf(bytes, opts.frame, opts.pixels ?? sharedPixelPool());
  if (opts.contentHash !== undefined && contentHash(payload, mediaType) !== opts.contentHash) throw new ImageNotSame();
  const side = VIEW_SIDE[opts.size];
  try {
    return await sharp(payload, SHARP_OPTS)
      .resize(side, side, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#000000' })
      .toColourspace('srgb')
      .jpeg({ quality: opts.size === 'thumb' ? 70 : 85 })
      .toBuffer();
  } catch (err) {
    if (isImageRejection(err)) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new ImageRejection(/pixel limit/i.test(msg) ? 'too_many_pixels' : 'corrupt', 'image does not decode', { cause: err });
  }
}
