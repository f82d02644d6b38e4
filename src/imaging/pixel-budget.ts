/**
 * How many pixels one evidence gathering (one hook call: the patient's imaging studies) may decode in
 * total. Each image is charged its declared width × height just before it is decoded; an image that
 * would pass the limit is refused with `study_pixel_limit` (said on the card), never dropped silently.
 */
import { ImageRejection } from './rejection.js';

export class PixelBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  take(width: number, height: number): void {
    const pixels = width * height;
    if (this.used + pixels > this.limit) {
      throw new ImageRejection(
        'study_pixel_limit',
        `a ${width}x${height} image would bring this request's images to ${Math.round((this.used + pixels) / 1e6)} MP, over the limit of ${Math.round(this.limit / 1e6)} MP`,
      );
    }
    this.used += pixels;
  }
}
