/**
 * High-water marks kept in a small JSON file (written atomically: temp file + rename), so a restart does
 * not analyse again what was seen, nor miss what arrived while the service was down. The durable store
 * (issue 11) will implement the same port.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { MarkStore } from './image-watcher.js';

export class FileMarkStore implements MarkStore {
  private marks: Record<string, string> | undefined;

  constructor(private readonly file: string) {}

  private async load(): Promise<Record<string, string>> {
    if (this.marks) return this.marks;
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as unknown;
      this.marks = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? Object.fromEntries(Object.entries(parsed).filter(([, v]) => typeof v === 'string')) as Record<string, string> : {};
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.marks = {};
    }
    return this.marks;
  }

  async get(source: string): Promise<string | undefined> {
    return (await this.load())[source];
  }

  async set(source: string, mark: string): Promise<void> {
    const marks = await this.load();
    marks[source] = mark;
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(marks, null, 1)}\n`, { mode: 0o600 });
    await rename(tmp, this.file);
  }
}
