/**
 * safetensors reader/writer: single `model.safetensors` or shards listed in `model.safetensors.index.json`.
 * Format: u64 LE header length, JSON header {name: {dtype, shape, data_offsets}}, then the data block.
 * Tensors are read one at a time from disk, so multi-GB checkpoints never sit in memory whole.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.js';
import { SnapshotError } from './snapshot-error.js';

export type StDtype = 'BF16' | 'F16' | 'F32';
const BYTES: Record<StDtype, number> = { BF16: 2, F16: 2, F32: 4 };

export interface TensorInfo {
  name: string;
  dtype: StDtype;
  shape: number[];
  /** File name relative to the snapshot directory. */
  file: string;
  /** Absolute byte offset inside the file. */
  offset: number;
  byteLength: number;
}

export interface NamedTensor {
  name: string;
  shape: number[];
  /** The values, or a function producing them when written (keeps big snapshots out of memory). */
  data: Float32Array | (() => Float32Array);
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

function parseHeader(dir: string, file: string): TensorInfo[] {
  const path = join(dir, file);
  if (!existsSync(path)) throw new SnapshotError(`weights file ${file} is missing`);
  const fd = openSync(path, 'r');
  try {
    const lenBuf = Buffer.alloc(8);
    if (readSync(fd, lenBuf, 0, 8, 0) !== 8) throw new SnapshotError(`${file}: truncated header`);
    const len = Number(lenBuf.readBigUInt64LE(0));
    if (len <= 0 || len > 100 * 1024 * 1024) throw new SnapshotError(`${file}: implausible header length ${len}`);
    const headBuf = Buffer.alloc(len);
    if (readSync(fd, headBuf, 0, len, 8) !== len) throw new SnapshotError(`${file}: truncated header`);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headBuf.toString('utf8')) as Record<string, unknown>;
    } catch (cause) {
      throw new SnapshotError(`${file}: header is not JSON`, { cause });
    }
    const out: TensorInfo[] = [];
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const e = v as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
      if (e.dtype !== 'BF16' && e.dtype !== 'F16' && e.dtype !== 'F32') {
        throw new SnapshotError(`${file}: tensor ${name} has unsupported dtype ${String(e.dtype)}`);
      }
      const [begin, end] = e.data_offsets ?? [0, -1];
      const count = (e.shape ?? []).reduce((a, b) => a * b, 1);
      if (end - begin !== count * BYTES[e.dtype]) throw new SnapshotError(`${file}: tensor ${name} size mismatch`);
      out.push({ name, dtype: e.dtype, shape: e.shape ?? [], file, offset: 8 + len + begin, byteLength: end - begin });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

export class SafetensorsReader {
  private readonly tensors = new Map<string, TensorInfo>();
  readonly files: string[];

  constructor(readonly dir: string) {
    const indexPath = join(dir, INDEX_FILE);
    if (existsSync(indexPath)) {
      let index: { weight_map?: Record<string, string> };
      try {
        index = JSON.parse(readFileSync(indexPath, 'utf8')) as typeof index;
      } catch (cause) {
        throw new SnapshotError(`${INDEX_FILE} is not valid JSON`, { cause });
      }
      if (!index.weight_map) throw new SnapshotError(`${INDEX_FILE} has no weight_map`);
      this.files = [...new Set(Object.values(index.weight_map))].sort();
      for (const f of this.files) for (const t of parseHeader(dir, f)) this.tensors.set(t.name, t);
      for (const [name, f] of Object.entries(index.weight_map)) {
        if (this.tensors.get(name)?.file !== f) throw new SnapshotError(`${INDEX_FILE}: ${name} not found in ${f}`);
      }
    } else if (existsSync(join(dir, SINGLE_FILE))) {
      this.files = [SINGLE_FILE];
      for (const t of parseHeader(dir, SINGLE_FILE)) this.tensors.set(t.name, t);
    } else {
      throw new SnapshotError(`no ${SINGLE_FILE} or ${INDEX_FILE} in snapshot`);
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SnapshotError(`tensor ${name} is missing from the snapshot`);
    return t;
  }

  /** Reads a tensor and converts it to float32, checking its shape when `expectShape` is given. */
  read(name: string, expectShape?: number[]): Float32Array {
    const t = this.info(name);
    if (expectShape && (expectShape.length !== t.shape.length || expectShape.some((d, i) => d !== t.shape[i]))) {
      throw new SnapshotError(`tensor ${name} has shape [${t.shape}], expected [${expectShape}]`);
    }
    const buf = new Uint8Array(t.byteLength);
    const fd = openSync(join(this.dir, t.file), 'r');
    try {
      let got = 0;
      while (got < t.byteLength) {
        const n = readSync(fd, buf, got, t.byteLength - got, t.offset + got);
        if (n <= 0) throw new SnapshotError(`${t.file}: truncated data for ${name}`);
        got += n;
      }
    } finally {
      closeSync(fd);
    }
    if (t.dtype === 'F32') return new Float32Array(buf.buffer);
    const u16 = new Uint16Array(buf.buffer);
    return t.dtype === 'BF16' ? bf16ToF32(u16) : f16ToF32(u16);
  }
}

function encode(data: Float32Array, dtype: StDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const u16 = dtype === 'BF16' ? f32ToBf16(data) : f32ToF16(data);
  return new Uint8Array(u16.buffer);
}

/** Writes one safetensors file; returns its total byte size. */
export function writeSafetensors(path: string, tensors: NamedTensor[], dtype: StDtype, metadata: Record<string, string> = { format: 'pt' }): number {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    const n = numel(t.shape) * BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const headBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headBytes.length));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, headBytes);
    for (const t of tensors) {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      if (data.length !== numel(t.shape)) throw new SnapshotError(`tensor ${t.name}: data does not match shape`);
      writeSync(fd, encode(data, dtype));
    }
  } finally {
    closeSync(fd);
  }
  return 8 + headBytes.length + off;
}

/** Writes shards `model-0000i-of-0000n.safetensors` of at most ~maxShardBytes plus the index file. */
export function writeShardedSafetensors(dir: string, tensors: NamedTensor[], dtype: StDtype, maxShardBytes: number): string[] {
  const groups: NamedTensor[][] = [[]];
  let cur = 0;
  for (const t of tensors) {
    const n = numel(t.shape) * BYTES[dtype];
    if (cur > 0 && cur + n > maxShardBytes) {
      groups.push([]);
      cur = 0;
    }
    groups[groups.length - 1].push(t);
    cur += n;
  }
  const pad = (i: number) => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  let total = 0;
  const files = groups.map((g, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`;
    writeSafetensors(join(dir, file), g, dtype);
    for (const t of g) {
      weightMap[t.name] = file;
      total += numel(t.shape) * BYTES[dtype];
    }
    return file;
  });
  writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return files;
}
