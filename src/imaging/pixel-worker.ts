/** Pixel worker thread: the image checks' pixel loops (pixel-workers.ts), off the service's event loop. */
import { parentPort } from 'node:worker_threads';
import { toEightBit } from './dicom-pixels.js';
import { fundusMetrics } from './gradability.js';
import type { PixelJob, PixelResult } from './pixel-workers.js';

const port = parentPort!;

function run(job: PixelJob): { reply: PixelResult; transfer: ArrayBuffer[] } {
  const bytes = new Uint8Array(job.buffer, job.offset, job.length);
  if (job.kind === 'metrics') {
    return { reply: { id: job.id, ok: true, kind: 'metrics', metrics: fundusMetrics(bytes, job.width, job.height, job.channels) }, transfer: [] };
  }
  const { data, channels } = toEightBit({ ...job.frame, bytes });
  const buffer = data.buffer as ArrayBuffer;
  return { reply: { id: job.id, ok: true, kind: 'eight-bit', buffer, offset: data.byteOffset, length: data.byteLength, channels }, transfer: [buffer] };
}

port.on('message', (job: PixelJob) => {
  try {
    const { reply, transfer } = run(job);
    port.postMessage(reply, transfer);
  } catch (err) {
    port.postMessage({ id: job.id, ok: false, message: err instanceof Error ? err.message : String(err) } satisfies PixelResult);
  }
});
