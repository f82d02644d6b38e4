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
  unsupported_transfer_syntax: 'unsupported_media_type',
  unsupported_pixel_format: 'unsupported_media_type',
  frame_out_of_range: 'bad_request',
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
