/**
 * The images of a patient were listed, but none could be assessed once fetched (refused, ungradable-only,
 * PACS unreachable). Not a model failure: the hook says so in words, and the analysis cache keeps this
 * outcome for `retryAfterMs` instead of fetching the same images again on every chart open.
 */
import { AppError } from '../errors.js';
import type { Problem } from '../evidence/types.js';
import type { PausingError } from './analysis-cache.js';

/** How long "could not be assessed" is kept before the images are fetched again (the PACS may be back). */
export const NO_USABLE_IMAGES_RETRY_MS = 60_000;

export class NoUsableImages extends AppError implements PausingError {
  constructor(
    readonly problems: readonly Problem[],
    readonly retryAfterMs = NO_USABLE_IMAGES_RETRY_MS,
  ) {
    super('bad_request', 'no image of this patient could be assessed', { expose: true, status: 422 });
    this.name = 'NoUsableImages';
  }
}
