/**
 * Issue 14, finding 8: an OCT B-scan recorded as a fundus photograph (modality OP) passed the fundus gate
 * (red excess 0, field fraction 1) and would have been asked the 12 fundus questions. A colour fundus
 * photograph has a camera field with a dark surround and red dominance at any exposure; an OP image without
 * them is refused as not a colour fundus photograph.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { drawOctJpeg, drawOctRaw } from '../../scripts/fixtures/draw-oct.js';
import { prepareImage } from '../../src/imaging/prepare.js';
import { ImageRejection, reasonInWords, type RejectReason } from '../../src/imaging/rejection.js';
import { fundusImage } from './synthetic.js';

const prov = { via: 'inline' as const };
const SHARED = join(import.meta.dirname, '../../../shared/data');
const sharedFiles = (dir: string) => (existsSync(join(SHARED, dir)) ? readdirSync(join(SHARED, dir)).filter((f) => /\.(jpe?g|png)$/i.test(f)).map((f) => join(SHARED, dir, f)) : []);
const FIXTURES = join(import.meta.dirname, '../../fixtures');

async function refusal(bytes: Uint8Array, modality: 'OP' | undefined = 'OP'): Promise<RejectReason | undefined> {
  try {
    await prepareImage(bytes, { modality, provenance: prov });
    return undefined;
  } catch (err) {
    if (err instanceof ImageRejection) return err.reason;
    throw err;
  }
}

describe('fundus gate: an image recorded as OP that is not a colour fundus photograph', () => {
  it('refuses a generated greyscale OCT B-scan given as OP', async () => {
    for (const seed of ['b-scan-1', 'b-scan-2']) expect(await refusal(await drawOctJpeg({ seed, drusen: 3 }))).toBe('not_fundus_photo');
  });

  it('refuses a B-scan stored as RGB PNG, and one cropped to fill the frame (no dark vitreous)', async () => {
    const { data, width, height } = drawOctRaw({ seed: 'rgb' });
    const rgb = await sharp(data, { raw: { width, height, channels: 1 } }).toColourspace('srgb').png().toBuffer();
    expect(await refusal(rgb)).toBe('not_fundus_photo');
    const cropped = await sharp(rgb).extract({ left: 0, top: Math.round(height * 0.3), width, height: Math.round(height * 0.5) }).png().toBuffer();
    expect(await refusal(cropped)).toBe('not_fundus_photo');
  });

  it('refuses a colour picture without a camera field (red everywhere, no dark surround)', async () => {
    const red = await sharp({ create: { width: 800, height: 600, channels: 3, background: { r: 180, g: 70, b: 40 } } }).jpeg().toBuffer();
    expect(await refusal(red)).toBe('not_fundus_photo');
  });

  it.skipIf(sharedFiles('oct').length === 0)('refuses the shared public OCT B-scan given as OP, and accepts it as OPT', async () => {
    for (const f of sharedFiles('oct')) {
      const bytes = readFileSync(f);
      expect(await refusal(bytes), f).toBe('not_fundus_photo');
      expect((await prepareImage(bytes, { modality: 'OPT', provenance: prov })).gradability.status).toBe('unchecked');
    }
  });

  it('passes every fundus photograph fixture and the shared public fundus photographs', async () => {
    const files = [
      ...readdirSync(join(FIXTURES, 'images')).filter((f) => f.includes('fundus') && !f.startsWith('corrupt')).map((f) => join(FIXTURES, 'images', f)),
      ...sharedFiles('fundus'),
    ];
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) {
      const img = await prepareImage(readFileSync(f), { modality: 'OP', provenance: prov });
      expect(img.gradability.status, f).toBe(f.includes('ungradable') ? 'ungradable' : 'gradable');
    }
  });

  it('passes the fundus DICOM fixtures (modality OP in the header) and refuses none of them as not fundus', async () => {
    const files = readdirSync(join(FIXTURES, 'dicom')).filter((f) => f.includes('fundus') && !f.startsWith('corrupt'));
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) {
      const img = await prepareImage(readFileSync(join(FIXTURES, 'dicom', f)), { provenance: prov });
      expect([img.modality, img.gradability.status], f).toEqual(['OP', f.startsWith('ungradable') ? 'ungradable' : 'gradable']);
    }
  });

  it('an underexposed fundus photograph is still too_dark, not "not a fundus photograph"', async () => {
    for (const gain of [0.3, 0.15, 0.08]) {
      const img = await prepareImage(await fundusImage({ gain }), { modality: 'OP', provenance: prov });
      expect(img.gradability.reasons, `gain ${gain}`).toContain('too_dark');
    }
  });

  it('an unlabelled B-scan is not guessed to be a fundus photograph (left unchecked, not refused)', async () => {
    const img = await prepareImage(await drawOctJpeg({ seed: 'unlabelled' }), { provenance: prov });
    expect([img.modality, img.gradability.status]).toEqual(['other', 'unchecked']);
  });
});

describe('reasons in plain words (for cards)', () => {
  it('the new reason has its own words (the compiler checks every reason has some)', () => {
    expect(reasonInWords('not_fundus_photo' satisfies RejectReason)).toMatch(/not a colour fundus photograph/);
    expect(reasonInWords('not_fundus_photo')).not.toMatch(/_/);
  });
});
