/**
 * DICOM Part 10 → one image frame, with dicom-parser (no pixel copy: the chosen frame is a view).
 * JPEG baseline/extended (8-bit) frames are returned as the JPEG bytes stored in the file; uncompressed
 * Explicit/Implicit VR Little Endian frames are returned as a checked NativeFrame, which `toEightBit`
 * (dicom-pixels.ts, on a pixel worker for large frames) turns into 8-bit pixels for sharp's raw input.
 */
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import type { Eye } from '../evidence/types.js';
import { ImageRejection } from './rejection.js';
import { LIMITS } from './thresholds.js';
import { checkDimensions } from './probe.js';
import { nativeFrame, type NativeFrame } from './dicom-pixels.js';

export const TS = Object.freeze({
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegExtended: '1.2.840.10008.1.2.4.51',
});

const JPEG_SYNTAXES = new Set<string>([TS.jpegBaseline, TS.jpegExtended]);
const RAW_SYNTAXES = new Set<string>([TS.implicitLE, TS.explicitLE]);

export type DicomFrame =
  | { readonly kind: 'jpeg'; readonly bytes: Uint8Array }
  | { readonly kind: 'native'; readonly native: NativeFrame };

export interface DicomImage {
  readonly modality?: string;
  readonly sopClassUid?: string;
  readonly studyInstanceUid?: string;
  readonly seriesInstanceUid?: string;
  readonly sopInstanceUid?: string;
  readonly laterality: Eye;
  readonly transferSyntaxUid: string;
  readonly rows: number;
  readonly columns: number;
  readonly numberOfFrames: number;
  /** 1-based frame actually decoded. */
  readonly frameNumber: number;
  readonly acquired?: string;
  readonly frame: DicomFrame;
}

export interface DecodeDicomOptions {
  /** 1-based frame; default: the central frame (the central B-scan of an OCT volume). */
  readonly frame?: number;
  /** Accepted Modality (0008,0060) values; default OP and OPT. */
  readonly modalities?: readonly string[];
  readonly maxBytes?: number;
}

export function parseDicomBytes(bytes: Uint8Array, maxBytes: number = LIMITS.maxDicomBytes): DataSet {
  if (bytes.byteLength > maxBytes) {
    throw new ImageRejection('too_large_bytes', `DICOM object is ${bytes.byteLength} bytes, limit ${maxBytes}`);
  }
  try {
    return dicomParser.parseDicom(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  } catch (err) {
    const msg = typeof err === 'string' ? err : err instanceof Error ? err.message : 'parse error';
    const unsupported = /deflate|big endian/i.test(msg);
    throw new ImageRejection(unsupported ? 'unsupported_transfer_syntax' : 'corrupt', `DICOM parse failed: ${msg.slice(0, 160)}`);
  }
}

export function dicomLaterality(ds: DataSet): Eye {
  const v = (ds.string('x00200062') ?? ds.string('x00200060') ?? '').trim().toUpperCase();
  return v === 'R' ? 'right' : v === 'L' ? 'left' : v === 'B' ? 'both' : 'unknown';
}

function dicomDate(ds: DataSet): string | undefined {
  const dt = ds.string('x0008002a') ?? ds.string('x00080023') ?? ds.string('x00080022') ?? ds.string('x00080020');
  const m = dt?.match(/^(\d{4})(\d{2})(\d{2})/);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

export function decodeDicom(bytes: Uint8Array, options: DecodeDicomOptions = {}): DicomImage {
  const ds = parseDicomBytes(bytes, options.maxBytes);
  const modality = ds.string('x00080060')?.trim().toUpperCase();
  const allowed = options.modalities ?? ['OP', 'OPT'];
  if (!modality || !allowed.includes(modality)) {
    throw new ImageRejection('wrong_modality', `DICOM modality ${modality ?? '(none)'} is not one of ${allowed.join(', ')}`);
  }
  const pixel = ds.elements.x7fe00010;
  if (!pixel || pixel.length === 0) throw new ImageRejection('no_pixel_data', 'DICOM object has no pixel data (7FE0,0010)');
  const ts = (ds.string('x00020010') ?? '').replace(/\0/g, '').trim();
  const rows = ds.uint16('x00280010') ?? 0;
  const columns = ds.uint16('x00280011') ?? 0;
  const numberOfFrames = Math.max(1, ds.intString('x00280008') ?? 1);
  checkDimensions(columns, rows, numberOfFrames);
  const frameNumber = options.frame ?? Math.floor((numberOfFrames - 1) / 2) + 1;
  if (!Number.isInteger(frameNumber) || frameNumber < 1 || frameNumber > numberOfFrames) {
    throw new ImageRejection('frame_out_of_range', `frame ${frameNumber} requested of ${numberOfFrames}`);
  }
  let frame: DicomFrame;
  if (JPEG_SYNTAXES.has(ts)) {
    frame = { kind: 'jpeg', bytes: jpegFrame(ds, pixel, frameNumber - 1, numberOfFrames) };
  } else if (RAW_SYNTAXES.has(ts) && !pixel.encapsulatedPixelData) {
    frame = { kind: 'native', native: nativeFrame(ds, pixel, frameNumber - 1, rows, columns) };
  } else {
    throw new ImageRejection('unsupported_transfer_syntax', `transfer syntax ${ts || '(none)'} is not decoded here`);
  }
  return {
    modality,
    sopClassUid: ds.string('x00080016'),
    studyInstanceUid: ds.string('x0020000d'),
    seriesInstanceUid: ds.string('x0020000e'),
    sopInstanceUid: ds.string('x00080018'),
    laterality: dicomLaterality(ds),
    transferSyntaxUid: ts,
    rows,
    columns,
    numberOfFrames,
    frameNumber,
    acquired: dicomDate(ds),
    frame,
  };
}

/** Cuts one JPEG frame out of encapsulated pixel data, trimming the even-length pad after EOI. */
function jpegFrame(ds: DataSet, el: Element, index: number, frames: number): Uint8Array {
  const fragments = el.fragments ?? [];
  if (!el.encapsulatedPixelData || fragments.length === 0) {
    throw new ImageRejection('corrupt', 'JPEG transfer syntax but pixel data is not encapsulated');
  }
  let out: Uint8Array;
  try {
    if (frames === 1) {
      out = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, fragments.length);
    } else if (fragments.length === frames) {
      out = dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, index, 1);
    } else {
      const bot = el.basicOffsetTable?.length === frames ? el.basicOffsetTable : dicomParser.createJPEGBasicOffsetTable(ds, el);
      out = dicomParser.readEncapsulatedImageFrame(ds, el, index, bot);
    }
  } catch (err) {
    throw new ImageRejection('corrupt', 'encapsulated JPEG frame could not be read', { cause: err });
  }
  if (out.length < 4 || out[0] !== 0xff || out[1] !== 0xd8) {
    throw new ImageRejection('corrupt', 'encapsulated frame is not a JPEG stream');
  }
  let end = out.length;
  while (end > 2 && out[end - 1] === 0x00 && !(out[end - 2] === 0xff && out[end - 1] === 0xd9)) end--;
  return end === out.length ? out : out.subarray(0, end);
}
