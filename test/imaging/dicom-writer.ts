/** A minimal DICOM Part 10 writer for tests (explicit or implicit VR little endian, native or encapsulated). */

export interface DicomElement {
  /** 'GGGGEEEE' hex. */
  tag: string;
  vr: string;
  value: string | number | Uint8Array | number[];
}

const LONG_VR = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

function pad(b: Buffer, vr: string): Buffer {
  if (b.length % 2 === 0) return b;
  return Buffer.concat([b, Buffer.from([vr === 'UI' || vr === 'OB' ? 0 : 0x20])]);
}

function valueBytes(e: DicomElement): Buffer {
  const v = e.value;
  if (v instanceof Uint8Array) return pad(Buffer.from(v), e.vr);
  if (e.vr === 'US') {
    const arr = Array.isArray(v) ? v : [Number(v)];
    const b = Buffer.alloc(2 * arr.length);
    arr.forEach((x, i) => b.writeUInt16LE(x, 2 * i));
    return b;
  }
  if (e.vr === 'UL') {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(Number(v));
    return b;
  }
  return pad(Buffer.from(String(v), 'latin1'), e.vr);
}

function tagBytes(tag: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(parseInt(tag.slice(0, 4), 16), 0);
  b.writeUInt16LE(parseInt(tag.slice(4), 16), 2);
  return b;
}

function encode(e: DicomElement, explicit: boolean): Buffer {
  const val = valueBytes(e);
  if (!explicit) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(val.length);
    return Buffer.concat([tagBytes(e.tag), len, val]);
  }
  if (LONG_VR.has(e.vr)) {
    const h = Buffer.alloc(8);
    h.write(e.vr, 0, 'latin1');
    h.writeUInt32LE(val.length, 4);
    return Buffer.concat([tagBytes(e.tag), h, val]);
  }
  const h = Buffer.alloc(4);
  h.write(e.vr, 0, 'latin1');
  h.writeUInt16LE(val.length, 2);
  return Buffer.concat([tagBytes(e.tag), h, val]);
}

function item(tag: string, body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(body.length);
  return Buffer.concat([tagBytes(tag), len, body]);
}

/** Encapsulated pixel data: empty basic offset table + one fragment per frame. */
export function encapsulated(frames: Uint8Array[]): Buffer {
  const head = Buffer.concat([tagBytes('7FE00010'), Buffer.from('OB\0\0', 'latin1'), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
  const items = [item('FFFEE000', Buffer.alloc(0)), ...frames.map((f) => item('FFFEE000', pad(Buffer.from(f), 'OB')))];
  return Buffer.concat([head, ...items, item('FFFEE0DD', Buffer.alloc(0))]);
}

export interface WriteOptions {
  transferSyntax: string;
  sopClass?: string;
  sopInstance?: string;
  elements: DicomElement[];
  /** Raw bytes appended after the dataset (e.g. from `encapsulated`). */
  trailer?: Buffer;
}

export function writeDicom(o: WriteOptions): Buffer {
  const sopClass = o.sopClass ?? '1.2.840.10008.5.1.4.1.1.77.1.5.1';
  const sopInstance = o.sopInstance ?? '1.2.3.4.5.6.7';
  const metaElems = Buffer.concat([
    encode({ tag: '00020001', vr: 'OB', value: new Uint8Array([0, 1]) }, true),
    encode({ tag: '00020002', vr: 'UI', value: sopClass }, true),
    encode({ tag: '00020003', vr: 'UI', value: sopInstance }, true),
    encode({ tag: '00020010', vr: 'UI', value: o.transferSyntax }, true),
  ]);
  const meta = Buffer.concat([encode({ tag: '00020000', vr: 'UL', value: metaElems.length }, true), metaElems]);
  const explicit = o.transferSyntax !== '1.2.840.10008.1.2';
  const all = [
    { tag: '00080016', vr: 'UI', value: sopClass },
    { tag: '00080018', vr: 'UI', value: sopInstance },
    ...o.elements,
  ].sort((a, b) => a.tag.localeCompare(b.tag));
  const ds = Buffer.concat(all.map((e) => encode(e, explicit)));
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), meta, ds, o.trailer ?? Buffer.alloc(0)]);
}

/** Common image-module elements. */
export function imageModule(o: {
  modality: string;
  rows: number;
  cols: number;
  frames?: number;
  spp?: 1 | 3;
  bits?: 8 | 16;
  photometric?: string;
  laterality?: string;
}): DicomElement[] {
  const el: DicomElement[] = [
    { tag: '00080060', vr: 'CS', value: o.modality },
    { tag: '0020000D', vr: 'UI', value: '1.2.3.100' },
    { tag: '0020000E', vr: 'UI', value: '1.2.3.100.1' },
    { tag: '00280002', vr: 'US', value: o.spp ?? 1 },
    { tag: '00280004', vr: 'CS', value: o.photometric ?? (o.spp === 3 ? 'RGB' : 'MONOCHROME2') },
    { tag: '00280010', vr: 'US', value: o.rows },
    { tag: '00280011', vr: 'US', value: o.cols },
    { tag: '00280100', vr: 'US', value: o.bits ?? 8 },
    { tag: '00280101', vr: 'US', value: o.bits ?? 8 },
    { tag: '00280102', vr: 'US', value: (o.bits ?? 8) - 1 },
    { tag: '00280103', vr: 'US', value: 0 },
  ];
  if (o.spp === 3) el.push({ tag: '00280006', vr: 'US', value: 0 });
  if (o.frames) el.push({ tag: '00280008', vr: 'IS', value: String(o.frames) });
  if (o.laterality) el.push({ tag: '00200062', vr: 'CS', value: o.laterality });
  return el;
}

/**
 * An uncompressed 16-bit MONOCHROME2 OCT-like frame (12 bits stored, explicit VR LE) of rows × cols: a
 * smooth gradient with a bright band, so it decodes and compresses like a real scan. 7000 × 7000 is the
 * 98 MB object that blocked the event loop in issue 14.
 */
export function sixteenBitDicom(rows: number, cols: number, o: { modality?: string; frames?: number } = {}): Buffer {
  const frames = o.frames ?? 1;
  const px = new Uint16Array(rows * cols * frames);
  for (let y = 0; y < rows; y++) {
    const band = Math.abs(y - rows / 2) < rows / 20 ? 2000 : 0;
    const row = px.subarray(y * cols, (y + 1) * cols);
    for (let x = 0; x < cols; x++) row[x] = Math.min(4095, 500 + Math.round((x * 1500) / cols) + band);
  }
  for (let f = 1; f < frames; f++) px.copyWithin(f * rows * cols, 0, rows * cols);
  const el = imageModule({ modality: o.modality ?? 'OPT', rows, cols, bits: 16, frames: o.frames }).map((e) => (e.tag === '00280101' ? { ...e, value: 12 } : e.tag === '00280102' ? { ...e, value: 11 } : e));
  return writeDicom({
    transferSyntax: '1.2.840.10008.1.2.1',
    sopClass: '1.2.840.10008.5.1.4.1.1.77.1.5.4',
    elements: [...el, { tag: '7FE00010', vr: 'OW', value: new Uint8Array(px.buffer) }],
  });
}
