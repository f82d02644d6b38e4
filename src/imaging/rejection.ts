import { AppError, type ErrorCode } from '../errors.js';
import type { UngradableReason } from './gradability.js';

/** Why an image was refused before the model. Stable strings: tests and problem lists switch on them. */
export type RejectReason =
  | 'too_large_bytes'
  | 'too_many_pixels'
  | 'too_small'
  | 'unsupported_format'
  | 'corrupt'
  | 'no_pixel_data'
  | 'wrong_modality'
  | 'not_fundus_photo'
  | 'unsupported_transfer_syntax'
  | 'unsupported_pixel_format'
  | 'frame_out_of_range'
  | 'study_pixel_limit'
  | 'fetch_failed';

const CODE: Record<RejectReason, ErrorCode> = {
  too_large_bytes: 'payload_too_large',
  too_many_pixels: 'payload_too_large',
  too_small: 'bad_request',
  unsupported_format: 'unsupported_media_type',
  corrupt: 'bad_request',
  no_pixel_data: 'bad_request',
  wrong_modality: 'bad_request',
  not_fundus_photo: 'bad_request',
  unsupported_transfer_syntax: 'unsupported_media_type',
  unsupported_pixel_format: 'unsupported_media_type',
  frame_out_of_range: 'bad_request',
  study_pixel_limit: 'payload_too_large',
  fetch_failed: 'upstream_error',
};

/** A typed refusal of one image. `message` is PHI-free (no UIDs, names or URLs with identifiers). */
export class ImageRejection extends AppError {
  readonly reason: RejectReason;

  constructor(reason: RejectReason, message: string, options: { cause?: unknown; code?: ErrorCode } = {}) {
    super(options.code ?? CODE[reason], message, { cause: options.cause, expose: true });
    this.name = 'ImageRejection';
    this.reason = reason;
  }
}

export function isImageRejection(err: unknown): err is ImageRejection {
  return err instanceof ImageRejection;
}

/**
 * Plain words for every reason an image could not be assessed — rejection reasons above, gradability
 * reasons (gradability.ts) and fetch failures — for cards a clinician reads. Codes never reach a card:
 * an unknown code is said generically, with its words (underscores as spaces) in brackets.
 */
const WORDS: Readonly<Record<RejectReason | UngradableReason | 'pacs_unreachable', string>> & Readonly<Record<string, string | undefined>> = {
  too_large_bytes: 'the file is larger than this service accepts',
  too_many_pixels: 'the image is larger (in pixels) than this service decodes',
  too_small: 'the image is too small to assess',
  unsupported_format: 'the file is not a JPEG, PNG or DICOM image',
  corrupt: 'the file is damaged or incomplete',
  no_pixel_data: 'the DICOM object holds no image',
  wrong_modality: 'it is not a fundus photograph or OCT',
  not_fundus_photo: 'it is recorded as a fundus photograph but is not a colour fundus photograph (for example an OCT scan)',
  unsupported_transfer_syntax: 'the DICOM compression is not supported',
  unsupported_pixel_format: 'the DICOM pixel format is not supported',
  frame_out_of_range: 'the requested frame is not in the image',
  study_pixel_limit: 'together the images exceed the size this service decodes for one request',
  fetch_failed: 'the image could not be downloaded',
  pacs_unreachable: 'the image archive (PACS) could not be reached',
  no_fundus: 'no fundus is visible',
  too_dark: 'the image is too dark',
  too_blurred: 'the image is out of focus',
  no_disc: 'the optic disc is not visible',
};

export function reasonInWords(code: string): string {
  const known = WORDS[code];
  if (known) return known;
  const words = code.replace(/[^A-Za-z0-9]+/g, ' ').trim().toLowerCase().slice(0, 60);
  return words ? `the image failed a quality or format check (${words})` : 'the image failed a quality or format check';
}
