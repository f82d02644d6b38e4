import { AppError, type ErrorCode } from '../errors.js';

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
  fetch_failed: 'upstream_error',
};

/** Each reason in plain words, for cards and reports (PHI-free). */
export const REJECTION_TEXT: Readonly<Record<RejectReason, string>> = {
  too_large_bytes: 'The image file is larger than the size limit',
  too_many_pixels: 'The image has more pixels than the limit',
  too_small: 'The image is too small to assess',
  unsupported_format: 'The image is in a format that cannot be read (JPEG, PNG and DICOM are supported)',
  corrupt: 'The image file is damaged and could not be decoded',
  no_pixel_data: 'The DICOM object holds no image',
  wrong_modality: 'The record and the image disagree about what kind of image it is',
  not_fundus_photo: 'The image is recorded as a fundus photograph but is not a colour fundus photograph (for example an OCT scan)',
  unsupported_transfer_syntax: 'The DICOM image is compressed in a way that cannot be decoded',
  unsupported_pixel_format: 'The DICOM image has a pixel format that cannot be read',
  frame_out_of_range: 'The requested frame is not in the DICOM object',
  fetch_failed: 'The image could not be retrieved',
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
