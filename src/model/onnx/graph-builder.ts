/**
 * A tiny DSL for assembling ONNX graphs. Large initializers can be streamed straight into an external data
 * file as they are added, so building a multi-GB model never holds more than one weight in memory.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  DataType,
  encodeModel,
  type AttrValue,
  type DataTypeId,
  type Dim,
  type NodeDef,
  type TensorDef,
  type ValueInfo,
} from './onnx-proto.js';

export const attr = {
  i: (value: number): AttrValue => ({ kind: 'int', value }),
  f: (value: number): AttrValue => ({ kind: 'float', value }),
  s: (value: string): AttrValue => ({ kind: 'string', value }),
  ints: (value: number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: number[]): AttrValue => ({ kind: 'floats', value }),
  tensor: (value: TensorDef): AttrValue => ({ kind: 'tensor', value }),
};

export interface ExternalDataTarget {
  /** File system path of the data file. */
  path: string;
  /** Location string stored in the model (relative to the model file). */
  location: string;
  /** Tensors smaller than this stay inline (default 1024 bytes). */
  minBytes?: number;
}

export interface OpOptions {
  domain?: string;
  outputs?: number;
  name?: string;
}

export class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly initializers: TensorDef[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private counter = 0;
  private fd: number | null = null;
  private offset = 0;
  private readonly constCache = new Map<string, string>();

  constructor(
    readonly name: string,
    private readonly external?: ExternalDataTarget,
  ) {
    if (external) this.fd = openSync(external.path, 'w');
  }

  fresh(prefix: string): string {
    this.counter += 1;
    return `${prefix}_${this.counter}`;
  }

  input(name: string, type: DataTypeId, shape: Dim[]): string {
    this.inputs.push({ name, type, shape });
    return name;
  }

  /** Declares a graph output; adds an Identity when the producing value has another name. */
  output(name: string, type: DataTypeId, shape: Dim[], source: string): void {
    if (source !== name) this.nodes.push(this.node('Identity', [source], [name], {}, {}));
    this.outputs.push({ name, type, shape });
  }

  initializer(name: string, type: DataTypeId, dims: number[], bytes: Uint8Array): string {
    const ext = this.external;
    if (ext && this.fd !== null && bytes.length >= (ext.minBytes ?? 1024)) {
      const pad = (64 - (this.offset % 64)) % 64;
      if (pad) writeSync(this.fd, new Uint8Array(pad));
      this.offset += pad;
      writeSync(this.fd, bytes);
      this.initializers.push({ name, type, dims, external: { location: ext.location, offset: this.offset, length: bytes.length } });
      this.offset += bytes.length;
    } else {
      this.initializers.push({ name, type, dims, raw: bytes });
    }
    return name;
  }

  f32(name: string, dims: number[], data: Float32Array): string {
    return this.initializer(name, DataType.FLOAT, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** Small int64 constant (deduplicated). */
  i64(values: number[], dims: number[] = [values.length]): string {
    return this.cached(`i64:${dims.join('x')}:${values.join(',')}`, () => {
      const a = BigInt64Array.from(values.map((v) => BigInt(v)));
      return this.initializer(this.fresh('const_i64'), DataType.INT64, dims, new Uint8Array(a.buffer));
    });
  }

  /** Small float32 constant (deduplicated). */
  f32c(values: number[], dims: number[] = [values.length]): string {
    return this.cached(`f32:${dims.join('x')}:${values.join(',')}`, () =>
      this.f32(this.fresh('const_f32'), dims, Float32Array.from(values)),
    );
  }

  op(opType: string, inputs: string[], attributes: Record<string, AttrValue> = {}, opts: OpOptions = {}): string {
    return this.opN(opType, inputs, attributes, { ...opts, outputs: 1 })[0];
  }

  opN(opType: string, inputs: string[], attributes: Record<string, AttrValue> = {}, opts: OpOptions = {}): string[] {
    const base = opts.name ?? this.fresh(opType);
    const outs = Array.from({ length: opts.outputs ?? 1 }, (_, i) => `${base}_out${i}`);
    this.nodes.push(this.node(opType, inputs, outs, attributes, { ...opts, name: base }));
    return outs;
  }

  /** Writes the model file (and finishes the external data file, if any). */
  save(path: string, opsets: { domain: string; version: number }[], metadata?: Record<string, string>): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
    const msg = encodeModel({
      graph: { name: this.name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs },
      opsets,
      metadata,
    });
    if (!this.external && msg.size >= 2 ** 31) {
      throw new Error(`model ${this.name} is ${msg.size} bytes inline; protobuf limit is 2 GB: use external data`);
    }
    const fd = openSync(path, 'w');
    try {
      for (const c of msg.chunks) writeSync(fd, c);
    } finally {
      closeSync(fd);
    }
  }

  /** Closes the external data file without saving (error paths). */
  abort(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private cached(key: string, make: () => string): string {
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = make();
    this.constCache.set(key, name);
    return name;
  }

  private node(
    opType: string,
    inputs: string[],
    outputs: string[],
    attributes: Record<string, AttrValue>,
    opts: OpOptions,
  ): NodeDef {
    return { opType, domain: opts.domain, name: opts.name ?? this.fresh(opType), inputs, outputs, attributes };
  }
}
