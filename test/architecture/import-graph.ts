/**
 * The import graph of the product's source (src/, launch/, cds-hooks/) and the checker of its import rules
 * (docs/architecture.md, "Import rules"). A small reader, not a parser: comments are dropped, then every
 * static import (`import type` too), side-effect import, `export … from` and dynamic `import('…')` with a
 * literal specifier is an edge. (TypeScript 7's package has no JavaScript compiler API to ask instead.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** A module: a file relative to the repository root (`src/main.ts`) or a package (`onnxruntime-node`, `node:fs`). */
export interface ImportGraph {
  files: string[];
  /** module -> imported module -> true when only types are imported (erased at run time). */
  edges: Map<string, Map<string, boolean>>;
}

const ROOT = resolve(import.meta.dirname, '../..');
const SOURCE_DIRS = ['src', 'launch', 'cds-hooks'];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return /\.(ts|js)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** `./x.js` from src/a/b.ts -> src/a/x.ts; a bare specifier -> its package name (`@scope/pkg`, `node:fs`). */
function resolveSpecifier(from: string, spec: string, files: Set<string>): string {
  if (!spec.startsWith('.')) {
    if (spec.startsWith('node:')) return spec;
    const parts = spec.split('/');
    return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  }
  const base = relative(ROOT, resolve(ROOT, dirname(from), spec));
  for (const candidate of [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')]) if (files.has(candidate)) return candidate;
  return base;
}

const STATIC = /^\s*(?:import|export)\s+(type\s)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm;
const SIDE_EFFECT = /^\s*import\s*()['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(()\s*['"]([^'"]+)['"]\s*\)/g;

/** The modules a source text imports; `typeOnly`: `import type` / `export type … from`. */
export function importSpecifiers(text: string): { specifier: string; typeOnly: boolean }[] {
  // Comments out (a `//` inside a URL string follows a colon, so it stays).
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  return [STATIC, SIDE_EFFECT, DYNAMIC].flatMap((re) => [...code.matchAll(re)].map((m) => ({ specifier: m[2]!, typeOnly: Boolean(m[1]) })));
}

export function readImportGraph(): ImportGraph {
  const files = SOURCE_DIRS.flatMap(sourceFiles).sort();
  const known = new Set(files);
  const edges = new Map<string, Map<string, boolean>>();
  for (const file of files) {
    const out = new Map<string, boolean>();
    for (const { specifier, typeOnly } of importSpecifiers(readFileSync(join(ROOT, file), 'utf8'))) {
      const to = resolveSpecifier(file, specifier, known);
      out.set(to, (out.get(to) ?? true) && typeOnly);
    }
    edges.set(file, out);
  }
  return { files, edges };
}

/**
 * A rule: modules matching `from` must not reach modules matching `to`, directly or through other modules.
 * `runtime`: follow only imports that exist at run time (a rule about what gets loaded — a package, I/O);
 * otherwise type-only imports count too (a rule about who may know whom).
 */
export interface ImportRule {
  name: string;
  from: (module: string) => boolean;
  to: (module: string) => boolean;
  runtime: boolean;
}

export interface Violation {
  rule: string;
  /** The import chain from the offending module to the forbidden one. */
  path: string[];
}

export function checkRules(graph: ImportGraph, rules: readonly ImportRule[]): Violation[] {
  const out: Violation[] = [];
  for (const rule of rules) {
    for (const start of graph.files.filter(rule.from)) {
      // Breadth-first, so that the chain shown is a shortest one.
      const seen = new Map<string, string | null>([[start, null]]);
      const queue = [start];
      while (queue.length) {
        const at = queue.shift()!;
        for (const [next, typeOnly] of graph.edges.get(at) ?? []) {
          if (seen.has(next) || (rule.runtime && typeOnly)) continue;
          seen.set(next, at);
          if (rule.to(next)) {
            const path = [next];
            for (let p = seen.get(next); p; p = seen.get(p)) path.unshift(p);
            out.push({ rule: rule.name, path });
          } else {
            queue.push(next);
          }
        }
      }
    }
  }
  return out;
}

const under = (...prefixes: string[]) => (m: string) => prefixes.some((p) => m === p || m.startsWith(p.endsWith('/') ? p : `${p}/`));

/** Packages and modules that do I/O: files, network, processes, databases. */
const IO = under('node:fs', 'node:fs/promises', 'node:net', 'node:http', 'node:https', 'node:child_process', 'node:dns', 'node:worker_threads', 'pg', 'better-sqlite3', 'express', 'fhirclient', 'sharp', 'onnxruntime-node', 'src/net', 'src/fhir', 'src/http', 'src/imaging', 'src/model/runtime', 'src/watcher', 'src/store');

export const IMPORT_RULES: readonly ImportRule[] = [
  {
    name: 'the model never reaches HTTP, FHIR, hooks, the network or storage',
    from: under('src/model'),
    to: under('src/http', 'src/fhir', 'src/cds', 'src/net', 'src/analysis', 'src/watcher', 'launch', 'cds-hooks', 'express', 'pg', 'better-sqlite3', 'src/store', 'fhirclient'),
    runtime: false,
  },
  { name: 'imaging never reaches the FHIR client', from: under('src/imaging'), to: under('src/fhir', 'fhirclient'), runtime: false },
  { name: 'hook code never imports onnxruntime-node', from: under('src/cds', 'cds-hooks'), to: under('onnxruntime-node'), runtime: true },
  {
    name: 'production never imports the sandbox',
    // The command dispatcher and `volmo doctor` choose or inspect the sandbox; the sandbox is its own root.
    from: (m) => m.startsWith('src/') && !under('src/sandbox', 'src/cli.ts', 'src/doctor.ts')(m),
    to: under('src/sandbox'),
    runtime: false,
  },
  { name: 'findings and report building import no I/O', from: under('src/findings', 'src/reports'), to: IO, runtime: true },
];
