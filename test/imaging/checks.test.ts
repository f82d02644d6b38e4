import { describe, expect, it, beforeAll } from 'vitest';
import sharp from 'sharp';
import { prepareImage } from '../../src/imaging/prepare.js';
import { probeImage, sniffFormat } from '../../src/imaging/probe.js';
import { ImageRejection } from '../../src/imaging/rejection.js';
import { LIMITS } from '../../src/imaging/thresholds.js';
import { fundusImage } from './synthetic.js';
import { pngBytes } from './png-bytes.js';

const prov = { via: 'inline' as const, fhirRef: 'Media/m1' };

async function rejection(p: Promise<unknown>): Promise<ImageRejection> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ImageRejection);
    return err as ImageRejection;
  }
  throw new Error('expected a rejection');
}

describe('gradability gate (synthetic fundus images)', () => {
  let good: Buffer;
  beforeAll(async () => {
    good = await fundusImage();
  });

  it('passes a fundus-like image and keeps its bytes for the model', async () => {
    const img = await prepareImage(good, { modality: 'OP', eye: 'right', provenance: prov });
    expect(img.gradability.status).toBe('gradable');
    expect(img.gradability.reasons).toEqual([]);
    expect(img.bytes).toBe(good);
    expect(img.mediaType).toBe('image/jpeg');
    expect([img.width, img.height]).toEqual([1200, 1000]);
    expect(img.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(img.eye).toBe('right');
  });

  it('flags an underexposed image too_dark and drops its bytes', async () => {
    const img = await prepareImage(await fundusImage({ gain: 0.15 }), { modality: 'OP', provenance: prov });
    expect(img.gradability.status).toBe('ungradable');
    expect(img.gradability.reasons).toContain('too_dark');
    expect(img.gradability.reasons).not.toContain('too_blurred'); // sharpness is exposure-independent
    expect(img.bytes).toBeUndefined();
  });

  it('flags a blurred image too_blurred (and nothing else)', async () => {
    const img = await prepareImage(await fundusImage({ blurSigma: 8 }), { modality: 'OP', provenance: prov });
    expect(img.gradability.reasons).toEqual(['too_blurred']);
    expect(img.gradability.metrics?.sharpness).toBeLessThan(1);
  });

  it('flags a fundus field without an optic disc no_disc', async () => {
    const img = await prepareImage(await fundusImage({ disc: false }), { modality: 'OP', provenance: prov });
    expect(img.gradability.reasons).toEqual(['no_disc']);
  });

  it('flags a black frame (no field at all) too_dark and refuses a flat grey picture as not a fundus photograph', async () => {
    const black = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#000' } }).png().toBuffer();
    expect((await prepareImage(black, { modality: 'OP', provenance: prov })).gradability.reasons).toEqual(['too_dark']);
    const grey = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#777' } }).jpeg().toBuffer();
    // a flat grey picture has no red-dominated camera field: not a colour fundus photograph (issue 14, finding 8)
    await expect(prepareImage(grey, { modality: 'OP', provenance: prov })).rejects.toMatchObject({ reason: 'not_fundus_photo' });
  });

  it('guesses OP for an unlabelled colour fundus photo and leaves a grey picture unchecked', async () => {
    expect((await prepareImage(good, { provenance: prov })).modality).toBe('OP');
    const grey = await sharp({ create: { width: 900, height: 320, channels: 3, background: '#404040' } }).greyscale().png().toBuffer();
    const g = await prepareImage(grey, { provenance: prov });
    expect(g.modality).toBe('other');
    expect(g.gradability.status).toBe('unchecked');
    expect(g.bytes).toBeDefined();
  });

  it('does not gate OCT (OPT) images', async () => {
    const dark = await fundusImage({ gain: 0.1 });
    const img = await prepareImage(dark, { modality: 'OPT', provenance: prov });
    expect(img.gradability.status).toBe('unchecked');
  });

  it('gives identical images the same content hash', async () => {
    const a = await prepareImage(good, { modality: 'OP', provenance: prov });
    const b = await prepareImage(Buffer.from(good), { modality: 'OP', provenance: { via: 'inline' } });
    const c = await prepareImage(await fundusImage({ seed: 8 }), { modality: 'OP', provenance: prov });
    expect(b.contentHash).toBe(a.contentHash);
    expect(c.contentHash).not.toBe(a.contentHash);
  });
});

describe('bad images are refused with a reason', () => {
  it('refuses a PNG declaring 30000x30000 from its header alone (no decoding)', async () => {
    const bomb = pngBytes(30000, 30000, Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    expect(bomb.length).toBeLessThan(100);
    const t0 = performance.now();
    const r = await rejection(prepareImage(bomb, { provenance: prov }));
    expect(r.reason).toBe('too_many_pixels');
    expect(r.message).toContain('30000x30000');
    expect(performance.now() - t0).toBeLessThan(50);
  });

  it('refuses a real decompression bomb (8000x8000 zeros, ~64 KB file) before decoding', async () => {
    const bomb = pngBytes(8000, 8000);
    expect(bomb.length).toBeLessThan(200_000);
    const r = await rejection(prepareImage(bomb, { provenance: prov }));
    expect(r.reason).toBe('too_many_pixels');
    expect(r.code).toBe('payload_too_large');
  });

  it('refuses an over-long side even when the pixel count is small', () => {
    expect(() => probeImage(pngBytes(20000, 100, Buffer.alloc(8)))).toThrow(/exceeds the limit/);
  });

  it('refuses images above the byte limit before looking at them', async () => {
    const big = Buffer.alloc(LIMITS.maxImageBytes + 1);
    big.set([0xff, 0xd8, 0xff]);
    expect((await rejection(prepareImage(big, { provenance: prov }))).reason).toBe('too_large_bytes');
  });

  it('refuses a truncated JPEG as corrupt', async () => {
    const good = await fundusImage({ width: 600, height: 500 });
    const r = await rejection(prepareImage(good.subarray(0, Math.floor(good.length * 0.6)), { provenance: prov }));
    expect(r.reason).toBe('corrupt');
  });

  it('refuses a JPEG whose marker structure is garbage as corrupt', async () => {
    const junk = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]), Buffer.alloc(14), Buffer.from('garbage garbage')]);
    expect((await rejection(prepareImage(junk, { provenance: prov }))).reason).toBe('corrupt');
  });

  it('refuses a PNG with a broken IDAT as corrupt', async () => {
    const r = await rejection(prepareImage(pngBytes(300, 300, Buffer.from('not zlib data at all')), { provenance: prov }));
    expect(r.reason).toBe('corrupt');
  });

  it('refuses unsupported formats by name', async () => {
    const gif = await sharp({ create: { width: 100, height: 100, channels: 3, background: '#f00' } }).gif().toBuffer();
    const webp = await sharp({ create: { width: 100, height: 100, channels: 3, background: '#f00' } }).webp().toBuffer();
    expect(sniffFormat(gif)).toBe('gif');
    const r = await rejection(prepareImage(webp, { provenance: prov }));
    expect([r.reason, r.message]).toEqual(['unsupported_format', 'unsupported image format: webp']);
    expect((await rejection(prepareImage(Buffer.from('%PDF-1.7\n...'), { provenance: prov }))).message).toContain('pdf');
    expect((await rejection(prepareImage(Buffer.from('hello'), { provenance: prov }))).reason).toBe('unsupported_format');
    expect((await rejection(prepareImage(Buffer.alloc(0), { provenance: prov }))).reason).toBe('corrupt');
  });

  it('refuses tiny images', async () => {
    const tiny = await sharp({ create: { width: 40, height: 40, channels: 3, background: '#f00' } }).png().toBuffer();
    expect((await rejection(prepareImage(tiny, { provenance: prov }))).reason).toBe('too_small');
  });
});

describe('content hash', () => {
  it('ignores JPEG metadata segments (APPn, COM) but not pixels', async () => {
    const { contentHash } = await import('../../src/imaging/content-hash.js');
    const base = await sharp({ create: { width: 120, height: 90, channels: 3, background: '#a33' } }).jpeg().toBuffer();
    const withMeta = await sharp(base).withMetadata({ exif: { IFD0: { Copyright: 'x' } } }).jpeg().toBuffer();
    const stripped = await sharp(base).jpeg().toBuffer();
    const com = Buffer.concat([base.subarray(0, 2), Buffer.from([0xff, 0xfe, 0x00, 0x07]), Buffer.from('hello'), base.subarray(2)]);
    expect(contentHash(com, 'image/jpeg')).toBe(contentHash(base, 'image/jpeg'));
    expect(contentHash(withMeta, 'image/jpeg')).toBe(contentHash(stripped, 'image/jpeg'));
    const other = await sharp({ create: { width: 120, height: 90, channels: 3, background: '#a34' } }).jpeg().toBuffer();
    expect(contentHash(other, 'image/jpeg')).not.toBe(contentHash(base, 'image/jpeg'));
  });
});
