/**
 * One image's bytes (JPEG, PNG or DICOM Part 10) → a checked, model-ready EvidenceImage, or an
 * ImageRejection. Order: byte size → format sniff → declared dimensions (no decoding yet) → the request's
 * pixel budget → one shrunk decode with sharp (limitInputPixels, fail on warnings) that both proves the
 * file decodes and feeds the gradability gate → content hash (content-hash.ts) of the model-ready bytes.
 * Native DICOM pixels are converted on a pixel worker (pixel-workers.ts); sharp works on libuv threads.
 */
import sharp from 'sharp';
import type { OutputInfo, Sharp } from 'sharp';
import type { Eye, EvidenceImage, Gradability, ImageModality, ImageProvenance } from '../evidence/types.js';
import { ImageRejection, isImageRejection } from './rejection.js';
import { LIMITS } from './thresholds.js';
import { probeImage, sniffFormat } from './probe.js';
import { decodeDicom } from './dicom-decode.js';
import { fundusMetrics, hasField, judgeFundus, looksLikeFundus } from './gradability.js';
import { GRADABILITY } from './thresholds.js';
import { contentHash } from './content-hash.js';
import type { PixelBudget } from './pixel-budget.js';
import { sharedPixelPool, type PixelWork } from './pixel-workers.js';

export interface PrepareHints {
  /** What the FHIR record says; 'other' or undefined = not stated. */
  readonly modality?: ImageModality;
  readonly eye?: Eye;
  /** 1-based frame of a multi-frame DICOM; default the central one. */
  readonly frame?: number;
  readonly provenance: ImageProvenance;
  readonly acquired?: string;
}

export interface PrepareOptions {
  /** Charged each image's width × height before it is decoded (one budget per request). */
  readonly budget?: PixelBudget;
  /** Where the pixel loops run (frame conversion, gradability metrics); default the process-wide worker pool. */
  readonly pixels?: PixelWork;
  /** The caller hands `bytes` over: a large native frame's buffer is moved to a worker, not copied. */
  readonly transferBytes?: boolean;
}

export interface PreparedImage extends EvidenceImage {
  /** Laterality from the record and the DICOM header disagreed (eye set to 'unknown'). */
  readonly lateralityConflict?: boolean;
}

const SHARP_OPTS = { limitInputPixels: LIMITS.maxPixels, failOn: 'warning' as const };

function reconcileEye(record: Eye | undefined, dicom: Eye): { eye: Eye; conflict: boolean } {
  const r = record ?? 'unknown';
  if (r === 'unknown') return { eye: dicom, conflict: false };
  if (dicom === 'unknown' || dicom === r) return { eye: r, conflict: false };
  return { eye: 'unknown', conflict: true };
}

export async function prepareImage(bytes: Uint8Array, hints: PrepareHints, opts: PrepareOptions = {}): Promise<PreparedImage> {
  if (bytes.byteLength === 0) throw new ImageRejection('corrupt', 'image is empty');
  const format = sniffFormat(bytes);
  let payload: Uint8Array;
  let mediaType: 'image/jpeg' | 'image/png';
  let img: Sharp;
  let modality: ImageModality = hints.modality ?? 'other';
  let eye: Eye = hints.eye ?? 'unknown';
  let conflict = false;
  let provenance: ImageProvenance = hints.provenance;
  let acquired = hints.acquired;
  let width: number;
  let height: number;
  const pixels = opts.pixels ?? sharedPixelPool();

  if (format === 'dicom') {
    const dcm = decodeDicom(bytes, { frame: hints.frame });
    const dm = dcm.modality as 'OP' | 'OPT';
    if (hints.modality && hints.modality !== 'other' && hints.modality !== dm) {
      throw new ImageRejection('wrong_modality', `record says ${hints.modality} but the DICOM object is ${dm}`);
    }
    modality = dm;
    ({ eye, conflict } = reconcileEye(hints.eye, dcm.laterality));
    acquired = acquired ?? dcm.acquired;
    provenance = {
      ...provenance,
      studyInstanceUid: provenance.studyInstanceUid ?? dcm.studyInstanceUid,
      seriesInstanceUid: provenance.seriesInstanceUid ?? dcm.seriesInstanceUid,
      sopInstanceUid: provenance.sopInstanceUid ?? dcm.sopInstanceUid,
      ...(dcm.numberOfFrames > 1 ? { frame: dcm.frameNumber } : {}),
    };
    opts.budget?.take(dcm.columns, dcm.rows);
    if (dcm.frame.kind === 'jpeg') {
      payload = dcm.frame.bytes;
      const p = probeImage(payload, LIMITS.maxDicomBytes);
      if (p.width !== dcm.columns || p.height !== dcm.rows) {
        throw new ImageRejection('corrupt', `JPEG frame is ${p.width}x${p.height}, DICOM says ${dcm.columns}x${dcm.rows}`);
      }
      mediaType = 'image/jpeg';
      img = sharp(payload, SHARP_OPTS);
    } else {
      const native = dcm.frame.native;
      const { data, channels } = await pixels.toEightBit(native, { transfer: opts.transferBytes });
      payload = await sharp(data, { raw: { width: native.cols, height: native.rows, channels } }).png({ compressionLevel: 1 }).toBuffer();
      mediaType = 'image/png';
      img = sharp(payload, SHARP_OPTS);
    }
    width = dcm.columns;
    height = dcm.rows;
  } else if (format === 'jpeg' || format === 'png') {
    const p = probeImage(bytes);
    payload = bytes;
    mediaType = format === 'jpeg' ? 'image/jpeg' : 'image/png';
    width = p.width;
    height = p.height;
    opts.budget?.take(width, height);
    img = sharp(payload, SHARP_OPTS);
  } else {
    throw new ImageRejection('unsupported_format', `unsupported image format: ${format}`);
  }

  // One shrunk decode: proves the whole stream decodes, and gives the gate its pixels.
  let analysis: { data: Buffer; info: OutputInfo };
  try {
    analysis = await img
      .resize(GRADABILITY.analysisSide, GRADABILITY.analysisSide, { fit: 'inside', withoutEnlargement: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    if (isImageRejection(err)) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    const reason = /pixel limit/i.test(msg) ? 'too_many_pixels' : /unsupported image format/i.test(msg) ? 'unsupported_format' : 'corrupt';
    throw new ImageRejection(reason, `image does not decode: ${msg.split('\n')[0].slice(0, 160)}`, { cause: err });
  }
  const { data, info } = analysis;
  const metrics = await pixels.fundusMetrics(data, info.width, info.height, info.channels);
  if (modality === 'other' && format !== 'dicom' && looksLikeFundus(metrics)) modality = 'OP';
  if (modality === 'OP' && hasField(metrics) && !looksLikeFundus(metrics)) {
    throw new ImageRejection('not_fundus_photo', `recorded as a fundus photograph (OP) but has no red-dominated camera field (red dominance ${metrics.redDominance.toFixed(2)}, field ${metrics.fieldFraction.toFixed(2)})`);
  }
  const gradability: Gradability = modality === 'OP' ? judgeFundus(metrics) : { status: 'unchecked', reasons: [] };

  return {
    contentHash: contentHash(payload, mediaType),
    eye,
    modality,
    provenance,
    gradability,
    mediaType,
    width,
    height,
    ...(acquired ? { acquired } : {}),
    ...(gradability.status === 'ungradable' ? {} : { bytes: payload }),
    ...(conflict ? { lateralityConflict: true } : {}),
  };
}
