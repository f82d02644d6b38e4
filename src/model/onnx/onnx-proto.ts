/**
 * Encoders for the ONNX protobuf messages the builder needs (field numbers from onnx/onnx.proto3):
 * ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto (raw_data or external data), ValueInfoProto.
 */
import { ProtoMessage } from './protobuf.js';

export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  BFLOAT16: 16,
} as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

export type Dim = number | string;

export interface ValueInfo {
  name: string;
  type: DataTypeId;
  shape: Dim[];
}

export interface TensorDef {
  name: string;
  type: DataTypeId;
  dims: number[];
  /** Inline little-endian bytes; absent when the tensor lives in an external data file. */
  raw?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'tensor'; value: TensorDef };

export interface NodeDef {
  opType: string;
  domain?: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, AttrValue>;
}

export interface GraphDef {
  name: string;
  nodes: NodeDef[];
  initializers: TensorDef[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

export interface ModelDef {
  graph: GraphDef;
  opsets: { domain: string; version: number }[];
  irVersion?: number;
  producer?: string;
  metadata?: Record<string, string>;
}

export function encodeTensor(t: TensorDef): ProtoMessage {
  const m = new ProtoMessage();
  m.packedVarints(1, t.dims);
  m.varint(2, t.type);
  m.string(8, t.name);
  if (t.external) {
    const entry = (k: string, v: string) => new ProtoMessage().string(1, k).string(2, v);
    m.message(13, entry('location', t.external.location));
    m.message(13, entry('offset', String(t.external.offset)));
    m.message(13, entry('length', String(t.external.length)));
    m.varint(14, 1);
  } else {
    m.bytes(9, t.raw ?? new Uint8Array(0));
  }
  return m;
}

function encodeAttribute(name: string, a: AttrValue): ProtoMessage {
  const m = new ProtoMessage().string(1, name);
  switch (a.kind) {
    case 'float':
      return m.float(2, a.value).varint(20, 1);
    case 'int':
      return m.varint(3, a.value).varint(20, 2);
    case 'string':
      return m.string(4, a.value).varint(20, 3);
    case 'tensor':
      return m.message(5, encodeTensor(a.value)).varint(20, 4);
    case 'floats':
      return m.packedFloats(7, a.value).varint(20, 6);
    case 'ints':
      return m.packedVarints(8, a.value).varint(20, 7);
  }
}

function encodeNode(n: NodeDef): ProtoMessage {
  const m = new ProtoMessage();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name);
  m.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes)) m.message(5, encodeAttribute(k, v));
  if (n.domain) m.string(7, n.domain);
  return m;
}

function encodeValueInfo(v: ValueInfo): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of v.shape) {
    const dim = new ProtoMessage();
    if (typeof d === 'number') dim.varint(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoMessage().varint(1, v.type).message(2, shape);
  const type = new ProtoMessage().message(1, tensorType);
  return new ProtoMessage().string(1, v.name).message(2, type);
}

export function encodeGraph(g: GraphDef): ProtoMessage {
  const m = new ProtoMessage();
  for (const n of g.nodes) m.message(1, encodeNode(n));
  m.string(2, g.name);
  for (const t of g.initializers) m.message(5, encodeTensor(t));
  for (const i of g.inputs) m.message(11, encodeValueInfo(i));
  for (const o of g.outputs) m.message(12, encodeValueInfo(o));
  return m;
}

export function encodeModel(model: ModelDef): ProtoMessage {
  const m = new ProtoMessage();
  m.varint(1, model.irVersion ?? 9);
  m.string(2, model.producer ?? 'volmo-cds');
  m.string(3, '1');
  m.message(7, encodeGraph(model.graph));
  for (const o of model.opsets) m.message(8, new ProtoMessage().string(1, o.domain).varint(2, o.version));
  for (const [k, v] of Object.entries(model.metadata ?? {})) {
    m.message(14, new ProtoMessage().string(1, k).string(2, v));
  }
  return m;
}
