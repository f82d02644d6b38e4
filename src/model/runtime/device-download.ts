/**
 * Reading device-resident (WebGPU) outputs back to the host without opening a graph twice. onnxruntime-node
 * 1.30 cannot download a gpu-buffer tensor (`getData()` aborts the process) and ignores pre-allocated CPU
 * outputs of a session whose outputs live on the device. A session therefore leaves every output on the device
 * and the outputs JS must read go through a tiny Identity graph on the same provider whose outputs are on the
 * host: one extra run of copies instead of a second copy of the model's weights.
 */
import * as ort from 'onnxruntime-node';
import { DataType, encodeModel, type DataTypeId } from '../onnx/onnx-proto.js';
import { AppError } from '../../errors.js';

const ONNX_TYPES: Partial<Record<string, DataTypeId>> = { float32: DataType.FLOAT, float16: DataType.FLOAT16, int64: DataType.INT64, bool: DataType.BOOL };

export interface OutputShape {
  name: string;
  type: string;
  rank: number;
}

/** The Identity graph that copies `outputs` (input `i<k>` -> output `o<k>`), as ONNX bytes. */
export function copyGraph(outputs: readonly OutputShape[]): Uint8Array {
  const dims = (o: OutputShape, k: number) => Array.from({ length: o.rank }, (_, d) => `d${k}_${d}`);
  const typeOf = (o: OutputShape) => {
    const t = ONNX_TYPES[o.type];
    if (t === undefined) throw new AppError('internal', `cannot copy output ${o.name} of type ${o.type} to the host`);
    return t;
  };
  return encodeModel({
    graph: {
      name: 'copy_to_host',
      nodes: outputs.map((_, k) => ({ opType: 'Identity', name: `copy${k}`, inputs: [`i${k}`], outputs: [`o${k}`], attributes: {} })),
      initializers: [],
      inputs: outputs.map((o, k) => ({ name: `i${k}`, type: typeOf(o), shape: dims(o, k) })),
      outputs: outputs.map((o, k) => ({ name: `o${k}`, type: typeOf(o), shape: dims(o, k) })),
    },
    opsets: [{ domain: '', version: 17 }],
  }).toBytes();
}

/** Copies device outputs of one session to the host; one copy session per set of output names, made on first use. */
export class DeviceDownloader {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(
    private readonly shapes: ReadonlyMap<string, OutputShape>,
    private readonly provider: string,
  ) {}

  static of(session: ort.InferenceSession, provider: string): DeviceDownloader {
    const shapes = new Map<string, OutputShape>();
    for (const m of session.outputMetadata) {
      if (m.isTensor) shapes.set(m.name, { name: m.name, type: m.type, rank: m.shape.length });
    }
    return new DeviceDownloader(shapes, provider);
  }

  private session(names: readonly string[]): Promise<ort.InferenceSession> {
    const key = names.join('\n');
    let s = this.sessions.get(key);
    if (!s) {
      const outputs = names.map((n) => {
        const shape = this.shapes.get(n);
        if (!shape) throw new AppError('internal', `no tensor output named ${n}`);
        return shape;
      });
      s = ort.InferenceSession.create(copyGraph(outputs), { executionProviders: [this.provider], logSeverityLevel: 3 });
      this.sessions.set(key, s);
    }
    return s;
  }

  /** Host copies of `names` from `out` (device tensors, which are disposed once copied). */
  async toHost(out: Record<string, ort.Tensor>, names: readonly string[]): Promise<Record<string, ort.Tensor>> {
    const onDevice = names.filter((n) => out[n].location !== 'cpu');
    const result: Record<string, ort.Tensor> = {};
    for (const n of names) if (out[n].location === 'cpu') result[n] = out[n];
    if (!onDevice.length) return result;
    const copy = await (await this.session(onDevice)).run(Object.fromEntries(onDevice.map((n, k) => [`i${k}`, out[n]])));
    onDevice.forEach((n, k) => {
      result[n] = copy[`o${k}`] as ort.Tensor;
      out[n].dispose();
    });
    return result;
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
