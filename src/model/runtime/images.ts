/**
 * Encoded image bytes -> normalised tiles, through the preprocessing module (src/model/preprocess/).
 * Kept as one small adapter so the backend does not depend on how preprocessing is organised.
 */
import { AppError } from '../../errors.js';
import type { Manifest } from '../manifest.js';
import type { PreprocessedImage } from './types.js';

export async function preprocessImage(bytes: Uint8Array, manifest: Manifest): Promise<PreprocessedImage> {
  void bytes;
  void manifest;
  throw new AppError('bad_request', 'encoded images are not supported by this build yet; pass preprocessed tiles');
}
