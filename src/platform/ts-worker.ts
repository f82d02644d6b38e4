/**
 * Starts a worker thread from a module URL. A `.ts` source (run through tsx: tests, `npm start`) gets tsx's
 * loader registered inside the thread first; a compiled `.js` entry starts as it is.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** `./name.ts` next to `base` when `base` is a .ts module, else `./name.js`. */
export function siblingModule(base: string, name: string): URL {
  return new URL(`./${name}.${base.endsWith('.ts') ? 'ts' : 'js'}`, base);
}

export function spawnModuleWorker(entry: URL, options: WorkerOptions = {}): Worker {
  if (!entry.href.endsWith('.ts')) return new Worker(entry, options);
  const tsxApi = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(code, { ...options, eval: true });
}
