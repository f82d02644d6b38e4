import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, attr } from '../../src/model/onnx/graph-builder.js';
import { DataType } from '../../src/model/onnx/onnx-proto.js';
import { encodeVarint } from '../../src/model/onnx/protobuf.js';

const dir = mkdtempSync(join(tmpdir(), 'volmo-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function buildSmall(external: boolean): string {
  const path = join(dir, external ? 'ext.onnx' : 'inline.onnx');
  const g = new GraphBuilder('small', external ? { path: `${path}.data`, location: 'ext.onnx.data', minBytes: 16 } : undefined);
  const x = g.input('x', DataType.FLOAT, ['batch', 3]);
  const w = g.f32('w', [3, 2], Float32Array.from([1, 2, 3, 4, 5, 6]));
  const y = g.op('MatMul', [x, w]);
  const z = g.op('Add', [y, g.f32c([0.5, -0.5])]);
  const s = g.op('Softmax', [z], { axis: attr.i(-1) });
  const shape = g.op('Shape', [x]);
  g.output('y', DataType.FLOAT, ['batch', 2], z);
  g.output('p', DataType.FLOAT, ['batch', 2], s);
  g.output('shape', DataType.INT64, [2], shape);
  g.save(path, [{ domain: '', version: 17 }]);
  return path;
}

describe('onnx protobuf writer', () => {
  it('encodes varints like protobuf (incl. negative int64)', () => {
    expect([...encodeVarint(1n)]).toEqual([1]);
    expect([...encodeVarint(300n)]).toEqual([0xac, 0x02]);
    expect(encodeVarint(-1n).length).toBe(10);
  });

  for (const external of [false, true]) {
    it(`builds a graph that onnxruntime loads and runs (external data: ${external})`, async () => {
      const path = buildSmall(external);
      if (external) expect(statSync(`${path}.data`).size).toBeGreaterThanOrEqual(24);
      const session = await ort.InferenceSession.create(path);
      const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 0, 1, 0, 1, 0]), [2, 3]) });
      expect(Array.from(out.y.data as Float32Array)).toEqual([6.5, 7.5, 3.5, 3.5]);
      const p = out.p.data as Float32Array;
      expect(p[0] + p[1]).toBeCloseTo(1, 6);
      expect(Array.from(out.shape.data as BigInt64Array)).toEqual([2n, 3n]);
      await session.release();
    });
  }
});
