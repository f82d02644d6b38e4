/** Shared by the dataset readers: collected problems, safe relative paths, image file listing. */
import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, relative, sep } from 'node:path';
import { AppError } from '../../errors.js';

/** Image files the readers pick up when they list folders (other files are ignored and counted). */
export const IMAGE_EXTENSIONS = /\.(jpe?g|png|dcm)$/i;

/** Collects every problem of an input before failing, so one run shows them all. */
export class Problems {
  private readonly list: string[] = [];
  constructor(private readonly name: string) {}
  add(msg: string): void {
    this.list.push(msg);
  }
  get count(): number {
    return this.list.length;
  }
  /** Throws AppError('bad_request') naming up to 20 problems. */
  throwIfAny(): void {
    if (this.list.length === 0) return;
    const shown = this.list.slice(0, 20).map((p) => `  - ${p}`).join('\n');
    const more = this.list.length > 20 ? `\n  … and ${this.list.length - 20} more` : '';
    throw new AppError('bad_request', `${this.name}: ${this.list.length} problem(s):\n${shown}${more}`);
  }
}

/** A dataset-relative path as a "/"-separated key; undefined when it is absolute or leaves the root. */
export function safeRelative(root: string, rel: string): string | undefined {
  if (rel.trim() === '' || isAbsolute(rel) || /^[a-zA-Z]:[\\/]/.test(rel)) return undefined;
  const abs = normalize(join(root, rel));
  const r = relative(root, abs);
  if (r === '' || r.startsWith('..') || isAbsolute(r)) return undefined;
  return r.split(sep).join('/');
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Every file under `dir` (depth-limited, sorted, symlinked folders not followed), as paths relative to `root`. */
export function listFiles(root: string, dir = root, depth = 4): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = join(dir, e.name);
    if (e.isDirectory() && depth > 0) out.push(...listFiles(root, p, depth - 1));
    else if (e.isFile()) out.push(relative(root, p).split(sep).join('/'));
  }
  return out;
}
