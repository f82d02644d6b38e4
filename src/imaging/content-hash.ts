/**
 * Dedupe key: sha256 of the image payload with metadata that does not change the pixels left out. For a
 * JPEG that is every APPn (JFIF, EXIF, ICC…) and COM segment before the scan, so the same photograph as a
 * camera JPEG (with JFIF/EXIF) and as the frame dcmtk's img2dcm wrapped in DICOM (APP0 stripped) hash alike.
 * PNG and other payloads are hashed as they are.
 */
import { createHash } from 'node:crypto';

export function contentHash(payload: Uint8Array, mediaType: string): string {
  const h = createHash('sha256');
  if (mediaType !== 'image/jpeg') return h.update(payload).digest('hex');
  const b = payload;
  let i = 2;
  let kept = 0; // start of the run of bytes not yet hashed
  h.update(b.subarray(0, 2));
  kept = 2;
  while (i + 4 <= b.length && b[i] === 0xff) {
    const marker = b[i + 1];
    if (marker === 0xda || marker === 0xd9) break;
    const len = (b[i + 2] << 8) | b[i + 3];
    const skip = (marker >= 0xe0 && marker <= 0xef) || marker === 0xfe;
    if (skip) {
      h.update(b.subarray(kept, i));
      kept = i + 2 + len;
    }
    i += 2 + len;
  }
  h.update(b.subarray(Math.min(kept, b.length)));
  return h.digest('hex');
}
