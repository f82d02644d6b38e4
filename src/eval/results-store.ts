/**
 * The resumable per-image results of `volmo eval`: `<out>/results.jsonl`, a header line with what the
 * answers depend on (model manifest, task set, tile cap), then one line per finished image, appended as
 * it finishes (an image run again is appended again; its last line wins). A later run with the same header skips finished images whose file is unchanged; a
 * different header (another model) moves the old file aside (never deletes it) and starts again.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageResult } from './types.js';

export const RESULTS_FILE = 'results.jsonl';
const KIND = 'volmo-eval-results';

export interface Fingerprint {
  manifestSha256: string;
  modelName: string;
  taskSetVersion: string;
  maxTiles: number;
}

export interface OpenedStore {
  done: Map<string, ImageResult>;
  /** Set when earlier results were moved aside: why, where to, and how many images they covered. */
  invalidated?: { reason: string; movedTo: string; results: number };
  append(r: ImageResult): void;
}

function sameFingerprint(a: Fingerprint, b: Fingerprint): string | undefined {
  if (a.manifestSha256 !== b.manifestSha256) return `the model changed (manifest ${a.manifestSha256.slice(0, 12)} -> ${b.manifestSha256.slice(0, 12)})`;
  if (a.taskSetVersion !== b.taskSetVersion) return `the task set changed (${a.taskSetVersion} -> ${b.taskSetVersion})`;
  if (a.maxTiles !== b.maxTiles) return `the tile cap changed (${a.maxTiles} -> ${b.maxTiles})`;
  return undefined;
}

function parseLines(text: string): { header?: { kind?: string; fingerprint?: Fingerprint }; results: ImageResult[]; torn: number } {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const parsed = lines.map((l) => {
    try {
      return JSON.parse(l) as unknown;
    } catch {
      return undefined;
    }
  });
  const [header, ...rest] = parsed as [{ kind?: string; fingerprint?: Fingerprint } | undefined, ...unknown[]];
  const results = rest.filter((r): r is ImageResult => typeof r === 'object' && r !== null && typeof (r as ImageResult).key === 'string');
  return { header, results, torn: rest.length - results.length };
}

export function openResults(outDir: string, fingerprint: Fingerprint, now: () => Date = () => new Date()): OpenedStore {
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, RESULTS_FILE);
  const headerLine = `${JSON.stringify({ kind: KIND, version: 1, fingerprint })}\n`;
  const done = new Map<string, ImageResult>();
  let invalidated: OpenedStore['invalidated'];
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8');
    const { header, results, torn } = parseLines(text);
    const why = header?.kind !== KIND || !header.fingerprint ? 'the results file has no valid header' : sameFingerprint(header.fingerprint, fingerprint);
    if (why) {
      const movedTo = join(outDir, `results.stale-${now().toISOString().replace(/[:.]/g, '-')}.jsonl`);
      renameSync(file, movedTo);
      invalidated = { reason: why, movedTo, results: new Set(results.map((r) => r.key)).size };
    } else {
      for (const r of results) done.set(r.key, r);
      // A line cut short by an interrupted run is dropped so that later appends start on a fresh line.
      if (torn > 0 || !text.endsWith('\n')) writeFileSync(file, headerLine + results.map((r) => `${JSON.stringify(r)}\n`).join(''));
    }
  }
  if (!existsSync(file)) writeFileSync(file, headerLine);
  return { done, ...(invalidated ? { invalidated } : {}), append: (r) => appendFileSync(file, `${JSON.stringify(r)}\n`) };
}
