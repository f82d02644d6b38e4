import { AppError, type ErrorCode } from '../../errors.js';

export type PreprocessFailure = 'unsupported_image' | 'image_too_large' | 'bad_options';

const CODES: Record<PreprocessFailure, ErrorCode> = {
  unsupported_image: 'unsupported_media_type',
  image_too_large: 'payload_too_large',
  bad_options: 'bad_request',
};

/** An image cannot be turned into model input: not an image / unsupported format, too many pixels, bad options. */
export class PreprocessError extends AppError {
  readonly reason: PreprocessFailure;

  constructor(reason: PreprocessFailure, message: string, options: { cause?: unknown } = {}) {
    super(CODES[reason], message, { ...options, expose: true });
    this.name = 'PreprocessError';
    this.reason = reason;
  }
}
