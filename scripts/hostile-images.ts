/**
 * A corpus of hostile images, generated (nothing large is committed): decompression bombs, truncated and
 * corrupt PNG/JPEG/DICOM, SVG with scripts and external references, empty files, zero and huge declared
 * dimensions, a 7000×7000 16-bit DICOM, bad multi-frame counts, wrong transfer syntaxes, mismatched content
 * types, polyglots, elongated images, animated GIF/WebP, CMYK and alpha images.
 * `npx tsx scripts/hostile-images.ts [dir]` writes them to a directory (default: a new temp dir) and prints
 * the list; test/imaging/hostile-corpus.test.ts runs them through every image input path.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { encapsulated, imageModule, sixteenBitDicom, writeDicom } from '../test/imaging/dicom-writer.js';
import { pngBytes } from '../test/imaging/png-bytes.js';
import { fundusImage } from '../test/imaging/synthetic.js';

export interface HostileImage {
  readonly name: string;
  readonly bytes: Buffer;
  /** The content type it is served or declared with (may lie). */
  readonly contentType: string;
  /** `rejected`: every path must refuse it with a reason; `either`: refused with a reason or accepted. */
  readonly expect: 'rejected' | 'either';
}

const TS = { explicitLE: '1.2.840.10008.1.2.1', explicitBE: '1.2.840.10008.1.2.2', jpegBaseline: '1.2.840.10008.1.2.4.50', j2k: '1.2.840.10008.1.2.4.90' };

function patchJpegSof(jpeg: Buffer, patch: (sof: Buffer, at: number) => void): Buffer {
  const b = Buffer.from(jpeg);
  for (let i = 2; i + 4 < b.length; ) {
    const m = b[i + 1]!;
    if (m === 0xc0 || m === 0xc1 || m === 0xc2) {
      patch(b, i);
      return b;
    }
    i += 2 + b.readUInt16BE(i + 2);
  }
  throw new Error('no SOF');
}

function dicom(o: { ts?: string; modality?: string; rows?: number; cols?: number; frames?: number; pixels?: Buffer; trailer?: Buffer }): Buffer {
  const el = imageModule({ modality: o.modality ?? 'OP', rows: o.rows ?? 64, cols: o.cols ?? 64, frames: o.frames });
  return writeDicom({
    transferSyntax: o.ts ?? TS.explicitLE,
    elements: o.pixels ? [...el, { tag: '7FE00010', vr: 'OB', value: o.pixels }] : el,
    trailer: o.trailer,
  });
}

/** GIF89a, 1×1, two frames (an animation, looping). */
function animatedGif(): Buffer {
  const frame = [0x21, 0xf9, 0x04, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00];
  return Buffer.from([
    ...Buffer.from('GIF89a', 'latin1'), 1, 0, 1, 0, 0x80, 0, 0, 0xff, 0, 0, 0, 0, 0xff,
    0x21, 0xff, 0x0b, ...Buffer.from('NETSCAPE2.0', 'latin1'), 0x03, 0x01, 0x00, 0x00, 0x00,
    ...frame, ...frame, 0x3b,
  ]);
}

export async function hostileCorpus(): Promise<HostileImage[]> {
  const fundus = await fundusImage({ width: 600, height: 500 });
  const fundusPng = await fundusImage({ width: 600, height: 500, format: 'png' });
  const px = Buffer.alloc(64 * 64, 90);
  const goodDicom = dicom({ pixels: px });
  const tinyPng = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#f00' } }).png().toBuffer();
  const zip = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(26), Buffer.from('payload.sh', 'latin1'), Buffer.from('#!/bin/sh\nrm -rf /\n')]);
  const gif = animatedGif();
  const list: HostileImage[] = [
    { name: 'empty', bytes: Buffer.alloc(0), contentType: 'image/jpeg', expect: 'rejected' },
    { name: 'random-bytes', bytes: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)), contentType: 'image/png', expect: 'rejected' },
    { name: 'png-bomb-8000x8000-zeros', bytes: pngBytes(8000, 8000), contentType: 'image/png', expect: 'rejected' },
    { name: 'png-declared-65535x65535', bytes: pngBytes(65535, 65535, deflateSync(Buffer.alloc(1000))), contentType: 'image/png', expect: 'rejected' },
    { name: 'png-declared-0x0', bytes: pngBytes(0, 0, deflateSync(Buffer.alloc(10))), contentType: 'image/png', expect: 'rejected' },
    { name: 'png-truncated', bytes: fundusPng.subarray(0, fundusPng.length >> 1), contentType: 'image/png', expect: 'rejected' },
    { name: 'png-corrupt-idat', bytes: Buffer.concat([fundusPng.subarray(0, 100), Buffer.alloc(400, 0xaa), fundusPng.subarray(500)]), contentType: 'image/png', expect: 'rejected' },
    { name: 'jpeg-declared-65000x65000', bytes: patchJpegSof(fundus, (b, i) => { b.writeUInt16BE(65000, i + 5); b.writeUInt16BE(65000, i + 7); }), contentType: 'image/jpeg', expect: 'rejected' },
    { name: 'jpeg-declared-height-0', bytes: patchJpegSof(fundus, (b, i) => b.writeUInt16BE(0, i + 5)), contentType: 'image/jpeg', expect: 'rejected' },
    { name: 'jpeg-12-bit-precision', bytes: patchJpegSof(fundus, (b, i) => void (b[i + 4] = 12)), contentType: 'image/jpeg', expect: 'rejected' },
    { name: 'jpeg-lossless-sof3', bytes: patchJpegSof(fundus, (b, i) => void (b[i + 1] = 0xc3)), contentType: 'image/jpeg', expect: 'rejected' },
    { name: 'jpeg-truncated', bytes: fundus.subarray(0, fundus.length >> 1), contentType: 'image/jpeg', expect: 'rejected' },
    { name: 'jpeg-elongated-16000x64', bytes: await sharp({ create: { width: 16000, height: 64, channels: 3, background: '#400' } }).jpeg().toBuffer(), contentType: 'image/jpeg', expect: 'either' },
    { name: 'jpeg-elongated-64x20000', bytes: await sharp({ create: { width: 64, height: 16384, channels: 3, background: '#400' } }).jpeg().toBuffer().then((b) => patchJpegSof(b, (s, i) => s.writeUInt16BE(20000, i + 5))), contentType: 'image/jpeg', expect: 'rejected' },
    { name: 'jpeg-cmyk', bytes: await sharp(fundus).toColourspace('cmyk').jpeg().toBuffer(), contentType: 'image/jpeg', expect: 'either' },
    { name: 'png-rgba-transparent', bytes: await sharp({ create: { width: 300, height: 300, channels: 4, background: { r: 200, g: 0, b: 0, alpha: 0 } } }).png().toBuffer(), contentType: 'image/png', expect: 'either' },
    { name: 'png-16-bit', bytes: await sharp(fundusPng).toColourspace('rgb16').png().toBuffer(), contentType: 'image/png', expect: 'either' },
    { name: 'png-served-as-jpeg', bytes: fundusPng, contentType: 'image/jpeg', expect: 'either' },
    { name: 'jpeg-served-as-dicom', bytes: fundus, contentType: 'application/dicom', expect: 'either' },
    { name: 'svg-script', bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="500" height="500"><script>fetch("http://169.254.169.254/latest/meta-data/")</script><rect width="500" height="500" fill="red"/></svg>'), contentType: 'image/svg+xml', expect: 'rejected' },
    { name: 'svg-external-ref-served-as-png', bytes: Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="http://127.0.0.1:1/secret.png" width="500" height="500"/></svg>'), contentType: 'image/png', expect: 'rejected' },
    { name: 'gif-animated', bytes: gif, contentType: 'image/gif', expect: 'rejected' },
    { name: 'webp-animated', bytes: await sharp(gif, { animated: true }).webp().toBuffer(), contentType: 'image/webp', expect: 'rejected' },
    { name: 'tiff', bytes: await sharp(fundus).tiff().toBuffer(), contentType: 'image/jpeg', expect: 'rejected' },
    { name: 'pdf', bytes: Buffer.from('%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF'), contentType: 'image/png', expect: 'rejected' },
    { name: 'polyglot-jpeg-zip', bytes: Buffer.concat([fundus, zip]), contentType: 'image/jpeg', expect: 'either' },
    { name: 'polyglot-png-html', bytes: Buffer.concat([fundusPng, Buffer.from('<html><script>alert(document.cookie)</script></html>')]), contentType: 'image/png', expect: 'either' },
    { name: 'polyglot-dicom-preamble-png', bytes: Buffer.concat([tinyPng, Buffer.alloc(128 - tinyPng.length), goodDicom.subarray(128)]), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-truncated', bytes: goodDicom.subarray(0, goodDicom.length - 2000), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-garbage-after-preamble', bytes: Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from('\x02\x00\x10\x00UI\xff\x7fjunk')]), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-no-pixel-data', bytes: dicom({}), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-frames-100-data-for-3', bytes: dicom({ frames: 100, pixels: Buffer.alloc(3 * 64 * 64, 80) }), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-frames-1000000', bytes: dicom({ frames: 1_000_000, pixels: Buffer.alloc(64 * 64, 80) }), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-declared-65535x65535', bytes: dicom({ rows: 65535, cols: 65535, pixels: Buffer.alloc(4096) }), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-jpeg2000-syntax', bytes: dicom({ ts: TS.j2k, trailer: encapsulated([Buffer.from([0xff, 0x4f, 0xff, 0x51, 0, 0])]) }), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-big-endian-syntax', bytes: dicom({ ts: TS.explicitBE, pixels: px }), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-jpeg-syntax-native-pixels', bytes: dicom({ ts: TS.jpegBaseline, pixels: px }), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-modality-ct', bytes: dicom({ modality: 'CT', pixels: px }), contentType: 'application/dicom', expect: 'rejected' },
    { name: 'dicom-16-bit-7000x7000', bytes: sixteenBitDicom(7000, 7000, { modality: 'OP' }), contentType: 'application/dicom', expect: 'either' },
  ];
  return list;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'volmo-hostile-'));
  mkdirSync(dir, { recursive: true });
  for (const h of await hostileCorpus()) {
    writeFileSync(join(dir, h.name), h.bytes);
    console.log(`${h.name.padEnd(36)} ${String(h.bytes.length).padStart(10)} bytes  ${h.contentType.padEnd(18)} expect ${h.expect}`);
  }
  console.log(`written to ${dir}`);
}
