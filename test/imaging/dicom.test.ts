import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import sharp from 'sharp';
import { decodeDicom, TS, type DicomImage } from '../../src/imaging/dicom-decode.js';
import { toEightBit } from '../../src/imaging/dicom-pixels.js';
import { prepareImage } from '../../src/imaging/prepare.js';
import { ImageRejection } from '../../src/imaging/rejection.js';
import { encapsulated, imageModule, writeDicom } from './dicom-writer.js';
import { fundusImage, fundusPixels } from './synthetic.js';

const IDRID_DCM = ['fixtures/dicom/IDRiD_01_OP.dcm', '/work/shared/data/dicom/IDRiD_01_OP.dcm'].find((p) => existsSync(p));
const IDRID_JPG = ['fixtures/fundus/IDRiD_01.jpg', '/work/shared/data/fundus/IDRiD_01.jpg'].find((p) => existsSync(p));
const prov = { via: 'wado-native' as const };

/** The 8-bit pixels of a decoded native frame. */
function eightBit(d: DicomImage): { pixels: Buffer; channels: number } {
  if (d.frame.kind !== 'native') throw new Error(`expected a native frame, got ${d.frame.kind}`);
  const { data, channels } = toEightBit(d.frame.native);
  return { pixels: data, channels };
}

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ImageRejection);
    return (err as ImageRejection).reason;
  }
  throw new Error('expected a rejection');
}

/** An OCT-like volume: frame k is a constant grey level 10*(k+1) with a bright band in row k. */
function octVolume(frames: number, rows: number, cols: number, ts = TS.explicitLE): Buffer {
  const px = Buffer.alloc(frames * rows * cols);
  for (let k = 0; k < frames; k++) {
    px.fill(10 * (k + 1), k * rows * cols, (k + 1) * rows * cols);
    px.fill(250, k * rows * cols + k * cols, k * rows * cols + (k + 1) * cols);
  }
  return writeDicom({
    transferSyntax: ts,
    sopClass: '1.2.840.10008.5.1.4.1.1.77.1.5.4',
    elements: [...imageModule({ modality: 'OPT', rows, cols, frames, laterality: 'L' }), { tag: '7FE00010', vr: 'OB', value: px }],
  });
}

describe('DICOM Part 10 decoding', () => {
  it.skipIf(!IDRID_DCM)('extracts the JPEG baseline frame of the IDRiD OP object byte-for-byte', async () => {
    const dcm = readFileSync(IDRID_DCM!);
    const d = decodeDicom(dcm);
    expect(d.transferSyntaxUid).toBe(TS.jpegBaseline);
    expect([d.modality, d.laterality, d.columns, d.rows, d.numberOfFrames]).toEqual(['OP', 'right', 3410, 2848, 1]);
    expect(d.frame.kind).toBe('jpeg');
    const jpeg = (d.frame as { bytes: Uint8Array }).bytes;
    expect([jpeg[0], jpeg[1], jpeg[jpeg.length - 2], jpeg[jpeg.length - 1]]).toEqual([0xff, 0xd8, 0xff, 0xd9]);
    if (IDRID_JPG) {
      // img2dcm keeps the JPEG stream and drops only its 18-byte JFIF APP0 segment
      const src = readFileSync(IDRID_JPG);
      expect(src.subarray(2, 4).toString('hex')).toBe('ffe0');
      expect(Buffer.from(jpeg).equals(Buffer.concat([src.subarray(0, 2), src.subarray(4 + src.readUInt16BE(4))]))).toBe(true);
    }
    const img = await prepareImage(dcm, { modality: 'OP', provenance: prov });
    expect(img.eye).toBe('right');
    expect(img.gradability.status).toBe('gradable');
    expect(img.provenance.sopInstanceUid).toMatch(/^[0-9.]+$/);
    if (IDRID_JPG) {
      const direct = await prepareImage(readFileSync(IDRID_JPG), { provenance: { via: 'inline' } });
      expect(direct.contentHash).toBe(img.contentHash); // same pixels from DICOM and from JPEG dedupe
    }
  });

  it('decodes uncompressed RGB (explicit VR LE) through sharp raw input to a lossless PNG', async () => {
    const { data, width, height } = fundusPixels({ width: 600, height: 500 });
    const dcm = writeDicom({
      transferSyntax: TS.explicitLE,
      elements: [...imageModule({ modality: 'OP', rows: height, cols: width, spp: 3, laterality: 'L' }), { tag: '7FE00010', vr: 'OB', value: data }],
    });
    const img = await prepareImage(dcm, { modality: 'OP', provenance: prov });
    expect([img.mediaType, img.width, img.height, img.eye, img.gradability.status]).toEqual(['image/png', 600, 500, 'left', 'gradable']);
    const back = await sharp(img.bytes!).raw().toBuffer();
    expect(back.equals(data)).toBe(true);
  });

  it('decodes implicit VR LE 16-bit MONOCHROME2 with windowing to 8 bits', () => {
    const rows = 70;
    const cols = 80;
    const px = Buffer.alloc(rows * cols * 2);
    for (let i = 0; i < rows * cols; i++) px.writeUInt16LE(i % cols < 40 ? 1000 : 3000, 2 * i);
    const dcm = writeDicom({
      transferSyntax: TS.implicitLE,
      elements: [...imageModule({ modality: 'OPT', rows, cols, bits: 16 }), { tag: '7FE00010', vr: 'OW', value: px }],
    });
    const d = decodeDicom(dcm);
    const f = eightBit(d);
    expect([f.channels, f.pixels[0], f.pixels[79]]).toEqual([1, 0, 255]);
  });

  it('picks the central B-scan of a multi-frame OCT volume by default, or a chosen frame', () => {
    const dcm = octVolume(9, 64, 96);
    const central = decodeDicom(dcm);
    expect([central.numberOfFrames, central.frameNumber, central.laterality]).toEqual([9, 5, 'left']);
    const px = eightBit(central).pixels;
    expect([px[0], px[4 * 96], px.length]).toEqual([50, 250, 64 * 96]);
    const first = decodeDicom(dcm, { frame: 1 });
    expect(eightBit(first).pixels[96]).toBe(10);
    expect(reason(() => decodeDicom(dcm, { frame: 10 }))).toBe('frame_out_of_range');
    expect(reason(() => decodeDicom(dcm, { frame: 0 }))).toBe('frame_out_of_range');
  });

  it('cuts one JPEG frame out of a multi-frame encapsulated volume', async () => {
    const frames = await Promise.all([1, 2, 3].map((k) => sharp({ create: { width: 96, height: 64, channels: 3, background: { r: 40 * k, g: 40 * k, b: 40 * k } } }).greyscale().jpeg().toBuffer()));
    const dcm = writeDicom({
      transferSyntax: TS.jpegBaseline,
      elements: imageModule({ modality: 'OPT', rows: 64, cols: 96, frames: 3 }),
      trailer: encapsulated(frames),
    });
    const d = decodeDicom(dcm);
    expect(d.frameNumber).toBe(2);
    expect(Buffer.from((d.frame as { bytes: Uint8Array }).bytes).equals(frames[1])).toBe(true);
    const img = await prepareImage(dcm, { provenance: prov });
    expect([img.modality, img.provenance.frame, img.gradability.status]).toEqual(['OPT', 2, 'unchecked']);
  });

  it('refuses DICOM without pixel data', () => {
    const dcm = writeDicom({ transferSyntax: TS.explicitLE, elements: imageModule({ modality: 'OP', rows: 100, cols: 100 }) });
    expect(reason(() => decodeDicom(dcm))).toBe('no_pixel_data');
  });

  it('refuses the wrong modality, in the header or against the record', async () => {
    const ct = writeDicom({ transferSyntax: TS.explicitLE, elements: [...imageModule({ modality: 'CT', rows: 64, cols: 64 }), { tag: '7FE00010', vr: 'OB', value: Buffer.alloc(4096) }] });
    expect(reason(() => decodeDicom(ct))).toBe('wrong_modality');
    const oct = octVolume(3, 64, 64);
    await expect(prepareImage(oct, { modality: 'OP', provenance: prov })).rejects.toMatchObject({ reason: 'wrong_modality' });
  });

  it('refuses short pixel data, unsupported transfer syntaxes and garbage', () => {
    const short = writeDicom({ transferSyntax: TS.explicitLE, elements: [...imageModule({ modality: 'OP', rows: 100, cols: 100 }), { tag: '7FE00010', vr: 'OB', value: Buffer.alloc(500) }] });
    expect(reason(() => decodeDicom(short))).toBe('corrupt');
    const j2k = writeDicom({ transferSyntax: '1.2.840.10008.1.2.4.90', elements: imageModule({ modality: 'OP', rows: 64, cols: 64 }), trailer: encapsulated([Buffer.from([0xff, 0x4f, 0xff, 0x51])]) });
    expect(reason(() => decodeDicom(j2k))).toBe('unsupported_transfer_syntax');
    const garbage = Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from('\x02\x00\x10\x00UI\xff\x7fjunk')]);
    expect(reason(() => decodeDicom(garbage))).toBe('corrupt');
    const huge = writeDicom({ transferSyntax: TS.explicitLE, elements: imageModule({ modality: 'OP', rows: 30000, cols: 30000 }) });
    expect(reason(() => decodeDicom(Buffer.concat([huge, Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4])])))).toBe('too_many_pixels');
  });

  it('marks laterality unknown when the record and the DICOM header disagree', async () => {
    const { data } = fundusPixels({ width: 300, height: 250 });
    const dcm = writeDicom({
      transferSyntax: TS.explicitLE,
      elements: [...imageModule({ modality: 'OP', rows: 250, cols: 300, spp: 3, laterality: 'R' }), { tag: '7FE00010', vr: 'OB', value: data }],
    });
    const img = await prepareImage(dcm, { eye: 'left', provenance: prov });
    expect([img.eye, img.lateralityConflict]).toEqual(['unknown', true]);
    void fundusImage;
  });
});
