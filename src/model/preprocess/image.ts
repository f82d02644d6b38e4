/**
 * Image -> InternVL model input. Decoding with sharp/libvips, like PIL's `Image.open(...).convert('RGB')`: no EXIF
 * auto-rotation, alpha dropped, grey expanded to RGB. Resizing (grid and thumbnail):
 * - 'pil' (default): decode once to RGB, then Pillow's BICUBIC re-implemented (bit-exact with VOLMO's evaluation),
 *   both sizes from that one decoded raster (WebAssembly SIMD kernels, pil-resize-simd.ts);
 * - 'sharp': both resizes straight from the encoded bytes with libvips cubic (JPEG shrink-on-load), faster on big
 *   images, within a measured tolerance of Pillow (see test/model/preprocess-parity.test.ts).
 * Then crop + ImageNet normalisation through a per-channel lookup table.
 */
import sharp from 'sharp';
import { normalizeLut, DEFAULT_MEAN, DEFAULT_STD } from './normalize.js';
import { PreprocessError } from './errors.js';
import { pilBicubicResizeMany } from './pil-resize.js';
import { planTiles, type TileOptions, type TilePlan } from './tiling.js';

export interface PreprocessOptions extends TileOptions {
  /** Per-channel RGB mean / std (from the manifest). Default ImageNet. */
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
  /** Reject images with more pixels than this before decoding (sharp limitInputPixels). Default 100 MP. */
  maxInputPixels?: number;
  /** Resampler: 'pil' (exact Pillow BICUBIC, default) or 'sharp' (libvips, faster, approximate). */
  resampler?: 'pil' | 'sharp';
  /** libvips resize kernel for resampler 'sharp'. Default 'cubic' (Catmull-Rom, the a=-0.5 cubic of PIL's BICUBIC). */
  kernel?: 'cubic' | 'mitchell' | 'lanczos3' | 'linear';
  /** Let libvips shrink JPEGs by 2/4/8 while decoding (faster, slightly further from PIL). Default true. */
  fastShrinkOnLoad?: boolean;
}

export interface PreprocessedImage {
  /** [tiles, 3, imageSize, imageSize] CHW float32, grid tiles row-major then the thumbnail. */
  pixelValues: Float32Array;
  tiles: number;
  grid: [number, number];
  width: number;
  height: number;
}

export const DEFAULT_MAX_INPUT_PIXELS = 100_000_000;

function sharpError(err: unknown): PreprocessError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(msg)) return new PreprocessError('image_too_large', 'image has more pixels than allowed', { cause: err });
  return new PreprocessError('unsupported_image', 'input is not a supported image (JPEG, PNG, WebP, TIFF, GIF)', { cause: err });
}

async function resizedRgb(bytes: Uint8Array, w: number, h: number, opts: PreprocessOptions): Promise<Buffer> {
  const { data, info } = await sharp(bytes, { limitInputPixels: opts.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS, failOn: 'error' })
    .removeAlpha()
    .toColourspace('srgb')
    .resize(w, h, { fit: 'fill', kernel: opts.kernel ?? 'cubic', fastShrinkOnLoad: opts.fastShrinkOnLoad ?? true })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== w || info.height !== h || info.channels !== 3) {
    throw new PreprocessError('unsupported_image', `unexpected decoded layout ${info.width}x${info.height}x${info.channels}`);
  }
  return data;
}

async function decodedRgb(bytes: Uint8Array, opts: PreprocessOptions): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(bytes, { limitInputPixels: opts.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS, failOn: 'error' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new PreprocessError('unsupported_image', `unexpected decoded channel count ${info.channels}`);
  return { data, width: info.width, height: info.height };
}

/** Resized RGB rasters (HWC uint8): the grid image and, when planned, the thumbnail. */
export async function resizeForPlan(bytes: Uint8Array, plan: TilePlan, opts: PreprocessOptions = {}): Promise<{ grid: Uint8Array; thumbnail?: Uint8Array }> {
  try {
    if ((opts.resampler ?? 'pil') === 'pil') {
      const img = await decodedRgb(bytes, opts);
      const sizes: [number, number][] = [[plan.resizeWidth, plan.resizeHeight]];
      if (plan.thumbnail) sizes.push([plan.imageSize, plan.imageSize]);
      const [grid, thumbnail] = pilBicubicResizeMany(img.data, img.width, img.height, 3, sizes);
      return { grid, thumbnail };
    }
    const [grid, thumbnail] = await Promise.all([
      resizedRgb(bytes, plan.resizeWidth, plan.resizeHeight, opts),
      plan.thumbnail ? resizedRgb(bytes, plan.imageSize, plan.imageSize, opts) : Promise.resolve(undefined),
    ]);
    return { grid, thumbnail };
  } catch (err) {
    throw err instanceof PreprocessError ? err : sharpError(err);
  }
}

/** Writes tile `t` of an HWC raster (width `rowWidth`) at (x0, y0) into `out` as normalised CHW. */
function writeTile(out: Float32Array, t: number, src: Uint8Array, rowWidth: number, x0: number, y0: number, size: number, lut: Float32Array[]): void {
  const plane = size * size;
  const base = t * 3 * plane;
  const [lr, lg, lb] = lut;
  for (let y = 0; y < size; y++) {
    let s = ((y0 + y) * rowWidth + x0) * 3;
    let d = base + y * size;
    for (let x = 0; x < size; x++, s += 3, d++) {
      out[d] = lr[src[s]];
      out[d + plane] = lg[src[s + 1]];
      out[d + 2 * plane] = lb[src[s + 2]];
    }
  }
}

export async function preprocessImage(bytes: Uint8Array, opts: PreprocessOptions = {}): Promise<PreprocessedImage> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new PreprocessError('unsupported_image', 'image is empty');
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    meta = await sharp(bytes, { limitInputPixels: opts.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS }).metadata();
  } catch (err) {
    throw sharpError(err);
  }
  const { width, height } = meta;
  if (!width || !height) throw new PreprocessError('unsupported_image', 'image has no dimensions');
  const limit = opts.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  if (limit > 0 && width * height > limit) throw new PreprocessError('image_too_large', `image has ${width * height} pixels, more than ${limit}`);
  const plan = planTiles(width, height, opts);
  const lut = normalizeLut(opts.mean ?? DEFAULT_MEAN, opts.std ?? DEFAULT_STD);
  const { grid, thumbnail } = await resizeForPlan(bytes, plan, opts);
  const size = plan.imageSize;
  const out = new Float32Array(plan.tiles * 3 * size * size);
  const [cols, rows] = plan.grid;
  for (let i = 0; i < cols * rows; i++) writeTile(out, i, grid, plan.resizeWidth, (i % cols) * size, Math.floor(i / cols) * size, size, lut);
  if (thumbnail) writeTile(out, cols * rows, thumbnail, size, 0, 0, size, lut);
  return { pixelValues: out, tiles: plan.tiles, grid: plan.grid, width, height };
}
