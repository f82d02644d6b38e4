/**
 * WebAssembly SIMD kernels for the two passes of Pillow's 8-bit BICUBIC resize of RGB images (same integer
 * arithmetic as pil-resize.ts, so the same bytes): i32x4 lanes hold the channels (horizontal pass) or 4 adjacent
 * bytes of a row (vertical pass); products and sums wrap like Pillow's 32-bit `int` accumulator; `>> 22` then the
 * saturating narrows i32 -> i16 -> u8 are exactly Pillow's clip8. The horizontal kernel convolves H_ROWS rows per
 * weight load. The module (under 1 KB) is assembled below from opcodes, so there is no build step or binary blob.
 * One instance and its memory are kept between calls (up to KEEP_BYTES: first-touch page faults of a fresh memory
 * cost more than the resize itself). `simdResizeRgb` returns undefined where WebAssembly SIMD is unavailable or the
 * image is too large for 32-bit offsets; the caller then uses the JavaScript loops.
 */
import type { PassCoeffs } from './pil-resize.js';

const I32 = 0x7f;
const V128 = 0x7b;
const op = {
  block: 0x02, loop: 0x03, end: 0x0b, br: 0x0c, brIf: 0x0d, get: 0x20, set: 0x21, tee: 0x22,
  load: 0x28, store: 0x36, store8: 0x3a, store16: 0x3b, shrU: 0x76, const: 0x41, eqz: 0x45, geU: 0x4f, add: 0x6a, sub: 0x6b, mul: 0x6c,
} as const;
/** SIMD opcodes (0xfd prefix, LEB128 sub-opcode). */
const sx = {
  load8x8u: 0x02, load32splat: 0x09, store: 0x0b, load32zero: 0x5c, splat: 0x11, extract0: 0x1b, narrowU8: 0x66, narrowS16: 0x85,
  extLo8: 0x89, extLo16: 0xa9, extHi16: 0xaa, shrS: 0xac, add: 0xae, mul: 0xb5,
} as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

/** Small instruction writer; memory accesses use align 0 (unaligned) and an optional offset. */
class Asm {
  bytes: number[] = [];
  o(...b: number[]): this { this.bytes.push(...b); return this; }
  get(i: number): this { return this.o(op.get, i); }
  set(i: number): this { return this.o(op.set, i); }
  tee(i: number): this { return this.o(op.tee, i); }
  i32(v: number): this { return this.o(op.const, ...sleb(v)); }
  load(offset = 0): this { return this.o(op.load, 0, ...uleb(offset)); }
  v(code: number, ...imm: number[]): this { return this.o(0xfd, ...uleb(code), ...imm); }
  vmem(code: number, offset = 0): this { return this.v(code, 0, ...uleb(offset)); }
  /** local[i] += delta */
  inc(i: number, delta: number | (() => void)): this {
    this.get(i);
    if (typeof delta === 'number') this.i32(delta);
    else delta();
    return this.o(op.add).set(i);
  }
  /** `block { loop { if (cond) break; body; continue } }` */
  whileNot(cond: () => void, body: () => void): this {
    this.o(op.block, 0x40, op.loop, 0x40);
    cond();
    this.o(op.brIf, 1);
    body();
    return this.o(op.br, 0, op.end, op.end);
  }
  /** shift the i32x4 on the stack right by 22 (arithmetic) */
  shr22(): this { return this.i32(22).v(sx.shrS); }
}

const ROUND = 1 << 21;

/** Source rows the horizontal kernel convolves together (sharing each weight load); `rows` is rounded up to this. */
export const H_ROWS = 4;

/**
 * hpass(src, stride, rows, outW, bounds, kk, kstride, out): RGB horizontal pass, H_ROWS rows at a time, 3 bytes
 * per output pixel. Reads up to H_ROWS - 1 rows past `rows` and writes as many output rows past it (caller's slack).
 */
function hpass(): Asm {
  const [src, stride, rows, outW, bounds, kk, kstride, out, y, xx, p, kp, n, rowIn, o, os, val] = Array.from({ length: 17 }, (_, i) => i);
  const rowOff = Array.from({ length: H_ROWS }, (_, r) => 17 + r); // r * stride
  const acc = Array.from({ length: H_ROWS }, (_, r) => 17 + H_ROWS + r);
  const w = 17 + 2 * H_ROWS;
  const a = new Asm();
  a.get(outW).i32(3).o(op.mul).set(os);
  rowOff.forEach((l, r) => a.get(stride).i32(r).o(op.mul).set(l));
  a.whileNot(() => a.get(y).get(rows).o(op.geU), () => {
    a.get(src).get(y).get(stride).o(op.mul, op.add).set(rowIn).i32(0).set(xx);
    a.get(out).get(y).get(os).o(op.mul, op.add).set(o);
    a.whileNot(() => a.get(xx).get(outW).o(op.geU), () => {
      a.get(bounds).get(xx).i32(8).o(op.mul, op.add).tee(kp).load(4).set(n);
      a.get(rowIn).get(kp).load().i32(3).o(op.mul, op.add).set(p);
      a.get(kk).get(xx).get(kstride).o(op.mul, op.add).set(kp);
      for (const r of acc) a.i32(ROUND).v(sx.splat).set(r);
      a.whileNot(() => a.get(n).o(op.eqz), () => {
        a.get(kp).vmem(sx.load32splat).set(w);
        acc.forEach((r, k) => {
          a.get(p).get(rowOff[k]).o(op.add).vmem(sx.load8x8u).v(sx.extLo16).get(w).v(sx.mul).get(r).v(sx.add).set(r);
        });
        a.inc(p, 3).inc(kp, 4).inc(n, -1);
      });
      // Exactly 3 bytes per pixel (a 4-byte store would clobber the next row's first pixel, already written).
      acc.forEach((r, k) => {
        a.get(r).shr22().tee(r).get(r).v(sx.narrowS16).tee(r).get(r).v(sx.narrowU8).v(sx.extract0, 0).set(val);
        a.get(o).get(os).i32(k).o(op.mul, op.add).tee(p).get(val).o(op.store16, 0, 0);
        a.get(p).get(val).i32(16).o(op.shrU, op.store8, 0, 2);
      });
      a.inc(o, 3).inc(xx, 1);
    });
    a.inc(y, H_ROWS);
  });
  return a;
}

/** vpass(img, rowLen, outH, bounds, kk, kstride, out): vertical pass, 16 bytes of a row at a time. */
function vpass(): Asm {
  const [img, rowLen, outH, bounds, kk, kstride, out, yy, i, t, p, kp, base, kb, n, a0, a1, a2, a3, w, v] =
    Array.from({ length: 21 }, (_, k) => k);
  const a = new Asm();
  const acc = [a0, a1, a2, a3];
  a.whileNot(() => a.get(yy).get(outH).o(op.geU), () => {
    a.get(bounds).get(yy).i32(8).o(op.mul, op.add).tee(kp).load(4).set(n);
    a.get(img).get(kp).load().get(rowLen).o(op.mul, op.add).set(base);
    a.get(kk).get(yy).get(kstride).o(op.mul, op.add).set(kb).i32(0).set(i);
    a.whileNot(() => a.get(i).get(rowLen).o(op.geU), () => {
      for (const r of acc) a.i32(ROUND).v(sx.splat).set(r);
      a.get(base).get(i).o(op.add).set(p).get(kb).set(kp).get(n).set(t);
      a.whileNot(() => a.get(t).o(op.eqz), () => {
        a.get(kp).load().v(sx.splat).set(w);
        for (const half of [0, 1]) {
          a.get(p).vmem(sx.load8x8u, half * 8).set(v);
          a.get(acc[2 * half]).get(v).v(sx.extLo16).get(w).v(sx.mul).v(sx.add).set(acc[2 * half]);
          a.get(acc[2 * half + 1]).get(v).v(sx.extHi16).get(w).v(sx.mul).v(sx.add).set(acc[2 * half + 1]);
        }
        a.inc(p, () => a.get(rowLen)).inc(kp, 4).inc(t, -1);
      });
      // 16-byte store at out + yy*rowLen + i; overshoot past the row end is rewritten by the next row.
      a.get(out).get(yy).get(rowLen).o(op.mul, op.add).get(i).o(op.add);
      a.get(a0).shr22().get(a1).shr22().v(sx.narrowS16);
      a.get(a2).shr22().get(a3).shr22().v(sx.narrowS16);
      a.v(sx.narrowU8).vmem(sx.store).inc(i, 16);
    });
    a.inc(yy, 1);
  });
  return a;
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
  const str = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
  const fn = (i32Locals: number, v128Locals: number, code: Asm) => {
    const body = [...vec([[...uleb(i32Locals), I32], [...uleb(v128Locals), V128]]), ...code.bytes, op.end];
    return [...uleb(body.length), ...body];
  };
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, 8, ...Array(8).fill(I32), 0], [0x60, 7, ...Array(7).fill(I32), 0]])),
    ...section(2, vec([[...str('env'), ...str('mem'), 0x02, 0x00, 0x01]])),
    ...section(3, vec([[0], [1]])),
    ...section(7, vec([[...str('h'), 0x00, 0], [...str('v'), 0x00, 1]])),
    ...section(10, vec([fn(9 + H_ROWS, H_ROWS + 1, hpass()), fn(8, 6, vpass())])),
  ]);
}

let compiled: WebAssembly.Module | null | undefined;

function wasmModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      const bytes = moduleBytes();
      compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/** Whether the SIMD kernels can run in this process. */
export function simdAvailable(): boolean {
  return wasmModule() !== null;
}

const SLACK = 16;
const PAGE = 65536;
/** WebAssembly memory kept between calls up to this size (first-touch page faults cost more than the resize). */
const KEEP_BYTES = 128 * 1024 * 1024;
/** Offsets are 32-bit in the kernels; beyond this the JavaScript loops run instead. */
const MAX_BYTES = 2 ** 31 - PAGE * 2;

interface Kernels {
  mem: WebAssembly.Memory;
  h: (...a: number[]) => void;
  v: (...a: number[]) => void;
}

let kept: Kernels | undefined;

function instantiate(mod: WebAssembly.Module, pages: number): Kernels {
  const mem = new WebAssembly.Memory({ initial: pages });
  const { h, v } = new WebAssembly.Instance(mod, { env: { mem } }).exports as Record<'h' | 'v', (...a: number[]) => void>;
  return { mem, h, v };
}

/** The kept instance, grown to `bytes` when that stays under KEEP_BYTES; otherwise a one-off instance. */
function instanceFor(bytes: number): Kernels {
  const mod = wasmModule()!;
  const pages = Math.ceil(bytes / PAGE) + 1;
  if (pages * PAGE > KEEP_BYTES) return instantiate(mod, pages);
  kept ??= instantiate(mod, pages);
  const have = kept.mem.buffer.byteLength / PAGE;
  if (have < pages) kept.mem.grow(pages - have);
  return kept;
}
const align = (n: number) => (n + 15) & ~15;

/** One resize: horizontal pass `hor` over source rows [y0, y0+rows) when given, then `vert` (bounds from row 0). */
export interface SimdJob {
  outW: number;
  outH: number;
  y0: number;
  rows: number;
  hor?: PassCoeffs;
  vert?: PassCoeffs;
}

/**
 * Runs RGB resize jobs on one source image with the SIMD kernels, copying the source into WebAssembly memory once
 * for all of them (grid and thumbnail share it). Undefined when SIMD is unavailable.
 */
export function simdResizeRgb(src: Uint8Array, width: number, height: number, jobs: readonly SimdJob[]): Uint8Array[] | undefined {
  const mod = wasmModule();
  if (!mod) return undefined;
  const stride = width * 3;
  const scratch = align((height + H_ROWS) * stride + SLACK);
  const coeffLen = (c: PassCoeffs | undefined) => (c ? c.bounds.byteLength + c.kk.byteLength : 0);
  const layout = jobs.map((j) => {
    const w = j.hor ? j.outW : width;
    const tmpLen = j.hor ? j.rows * w * 3 : 0;
    const tmpCap = j.hor ? Math.ceil(j.rows / H_ROWS) * H_ROWS * w * 3 : 0;
    const outLen = j.vert ? j.outH * w * 3 : 0;
    const tmpOff = scratch;
    const outOff = align(tmpOff + tmpCap + SLACK);
    const horOff = align(outOff + outLen + SLACK);
    const vertOff = align(horOff + coeffLen(j.hor));
    return { w, tmpLen, outLen, tmpOff, outOff, horOff, vertOff, end: vertOff + coeffLen(j.vert) };
  });
  const bytes = Math.max(scratch, ...layout.map((l) => l.end));
  if (bytes > MAX_BYTES) return undefined;
  let kernels: Kernels;
  try {
    kernels = instanceFor(bytes);
  } catch {
    return undefined; // could not reserve the memory: the JavaScript loops allocate per pass instead
  }
  const { mem, h, v } = kernels;
  new Uint8Array(mem.buffer).set(src.subarray(0, height * stride));
  const put = (c: PassCoeffs, at: number, shift: number) => {
    const b = new Int32Array(mem.buffer, at, c.bounds.length);
    b.set(c.bounds);
    if (shift) for (let k = 0; k < b.length; k += 2) b[k] -= shift;
    new Int32Array(mem.buffer, at + c.bounds.byteLength, c.kk.length).set(c.kk);
  };
  return jobs.map((j, n) => {
    const l = layout[n];
    let cur = 0;
    let len = height * stride;
    if (j.hor) {
      put(j.hor, l.horOff, 0);
      h(j.y0 * stride, stride, j.rows, j.outW, l.horOff, l.horOff + j.hor.bounds.byteLength, j.hor.ksize * 4, l.tmpOff);
      cur = l.tmpOff;
      len = l.tmpLen;
    }
    if (j.vert) {
      put(j.vert, l.vertOff, j.hor ? j.y0 : 0);
      v(cur, l.w * 3, j.outH, l.vertOff, l.vertOff + j.vert.bounds.byteLength, j.vert.ksize * 4, l.outOff);
      cur = l.outOff;
      len = l.outLen;
    }
    return new Uint8Array(mem.buffer, cur, len).slice();
  });
}
