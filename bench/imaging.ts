/**
 * Image-check throughput: prepareImage (header probe + one shrink-on-load decode + gradability gate +
 * content hash) vs a straightforward full decode to raw pixels then resize for the same metrics.
 * Run: npx tsx bench/imaging.ts [iterations]
 */
import { readFileSync, existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { prepareImage } from '../src/imaging/prepare.js';
import { fundusMetrics, judgeFundus } from '../src/imaging/gradability.js';
import { GRADABILITY } from '../src/imaging/thresholds.js';
import { decodeDicom } from '../src/imaging/dicom-decode.js';
import { toEightBit, type NativeFrame } from '../src/imaging/dicom-pixels.js';
import { PixelWorkerPool } from '../src/imaging/pixel-workers.js';
import { sixteenBitDicom } from '../test/imaging/dicom-writer.js';

export interface ImagingBenchRow {
  readonly input: string;
  readonly path: 'prepareImage' | 'decode-then-resize';
  readonly msPerImage: number;
  readonly imagesPerSecond: number;
}

async function time(n: number, fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return (performance.now() - t0) / n;
}

async function baseline(bytes: Buffer): Promise<void> {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  const small = await sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } })
    .resize(GRADABILITY.analysisSide, GRADABILITY.analysisSide, { fit: 'inside' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  judgeFundus(fundusMetrics(small.data, small.info.width, small.info.height, small.info.channels));
}

export async function runImagingBench(iterations = 10): Promise<ImagingBenchRow[]> {
  const inputs: [string, string][] = [
    ['fixtures/dicom/idrid-fundus-od.dcm', 'IDRiD 3410x2848 JPEG-in-DICOM'],
    ['/work/shared/data/fundus/IDRiD_01.jpg', 'IDRiD 3410x2848 JPEG'],
    ['fixtures/images/diabetic-fundus-od.jpg', 'fixture 1024x1024 JPEG'],
  ];
  const rows: ImagingBenchRow[] = [];
  for (const [path, label] of inputs) {
    if (!existsSync(path)) continue;
    const bytes = readFileSync(path);
    const ms = await time(iterations, () => prepareImage(bytes, { provenance: { via: 'inline' } }));
    rows.push({ input: label, path: 'prepareImage', msPerImage: ms, imagesPerSecond: 1000 / ms });
    if (!path.endsWith('.dcm')) {
      const b = await time(iterations, () => baseline(bytes));
      rows.push({ input: label, path: 'decode-then-resize', msPerImage: b, imagesPerSecond: 1000 / b });
    }
  }
  return rows;
}

export interface PixelBenchRow {
  readonly where: 'main thread' | 'pixel worker';
  readonly msPerFrame: number;
  /** Longest event-loop stall while the frame was converted (5 ms timer, wall clock: includes the host's scheduling noise). */
  readonly maxLagMs: number;
}

/** Wall time of `fn` and the longest event-loop stall meanwhile. */
async function timedWithLag(fn: () => Promise<unknown>): Promise<{ ms: number; lag: number }> {
  let lag = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lag = Math.max(lag, now - last - 5);
    last = now;
  }, 5);
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  await fn();
  const end = performance.now();
  clearInterval(timer);
  return { ms: end - t0, lag: Math.max(lag, end - last - 5) }; // a stall that lasted to the end never let the timer fire
}

/** A 7000×7000 16-bit native DICOM frame → 8-bit: in the event loop (before issue 14) vs on a pixel worker. */
export async function runPixelBench(iterations = 3, side = 7000): Promise<PixelBenchRow[]> {
  const dcm = sixteenBitDicom(side, side);
  const frame = (): NativeFrame => {
    const d = decodeDicom(Buffer.from(dcm));
    if (d.frame.kind !== 'native') throw new Error('expected a native frame');
    return d.frame.native;
  };
  const pool = new PixelWorkerPool({ size: 1 });
  await pool.toEightBit(frame(), { transfer: true }); // start the worker
  const rows: PixelBenchRow[] = [];
  try {
    for (const where of ['main thread', 'pixel worker'] as const) {
      let ms = 0;
      let lag = 0;
      for (let i = 0; i < iterations; i++) {
        const f = frame(); // a fresh copy each time, handed over like fetched bytes
        const r = await timedWithLag(async () => (where === 'main thread' ? toEightBit(f) : pool.toEightBit(f, { transfer: true })));
        ms += r.ms;
        lag = Math.max(lag, r.lag);
      }
      rows.push({ where, msPerFrame: ms / iterations, maxLagMs: lag });
    }
  } finally {
    await pool.close();
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await runImagingBench(Number(process.argv[2] ?? 10));
  for (const r of rows) console.log(`${r.input.padEnd(32)} ${r.path.padEnd(20)} ${r.msPerImage.toFixed(1).padStart(7)} ms  ${r.imagesPerSecond.toFixed(1).padStart(6)} img/s`);
}
