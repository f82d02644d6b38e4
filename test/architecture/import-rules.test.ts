/** The import rules of docs/architecture.md, checked on the real import graph of src/, launch/ and cds-hooks/. */
import { describe, expect, it } from 'vitest';
import { checkRules, IMPORT_RULES, importSpecifiers, readImportGraph, type ImportGraph } from './import-graph.js';

const graph = readImportGraph();

/** The real graph plus one import, as if `from` gained `import … from to` (a scratch copy; nothing is written). */
function withImport(from: string, to: string, typeOnly = false): ImportGraph {
  const edges = new Map([...graph.edges].map(([k, v]) => [k, new Map(v)]));
  edges.get(from)!.set(to, typeOnly);
  return { files: graph.files, edges };
}

const broken = (g: ImportGraph) => checkRules(g, IMPORT_RULES).map((v) => `${v.rule}: ${v.path.join(' -> ')}`);

describe('import rules', () => {
  it('reads the whole source tree', () => {
    expect(graph.files.length).toBeGreaterThan(200);
    expect(graph.edges.get('src/main.ts')!.has('src/http/app.ts')).toBe(true);
    expect(graph.edges.get('src/cli.ts')!.has('src/sandbox/service.ts')).toBe(true);
  });

  it('holds for the source as it is', () => {
    expect(broken(graph)).toEqual([]);
  });

  it('keeps everything the service loads on its own (src/main.ts onwards) apart from the sandbox', () => {
    const seen = new Set<string>();
    const stack = ['src/main.ts'];
    while (stack.length) for (const [next] of graph.edges.get(stack.pop()!) ?? []) if (!seen.has(next)) (seen.add(next), stack.push(next));
    expect([...seen].filter((m) => m.startsWith('src/sandbox/'))).toEqual([]);
    expect(seen.has('src/log.ts')).toBe(true);
  });

  describe('fails when a forbidden import is added', () => {
    it.each([
      ['src/model/prompt.ts', 'src/fhir/http-client.ts', 'the model never reaches'],
      ['src/model/tokenizer/tokenizer.ts', 'pg', 'the model never reaches'],
      ['src/model/runtime/exam.ts', 'src/store/open-store.ts', 'the model never reaches'],
      ['src/imaging/gradability.ts', 'src/fhir/client.ts', 'imaging never reaches the FHIR client'],
      ['src/cds/cards.ts', 'onnxruntime-node', 'hook code never imports onnxruntime-node'],
      ['src/main.ts', 'src/sandbox/index.ts', 'production never imports the sandbox'],
      ['src/findings/aggregate.ts', 'node:fs', 'findings and report building import no I/O'],
      ['src/reports/bundle.ts', 'src/net/guarded-fetch.ts', 'findings and report building import no I/O'],
    ])('%s importing %s', (from, to, rule) => {
      const found = broken(withImport(from, to));
      expect(found.length).toBeGreaterThan(0);
      expect(found.join('\n')).toContain(rule);
      expect(found.join('\n')).toContain(`${from} -> ${to}`);
    });

    it('through another module, and shows the chain', () => {
      // evidence/ may import the FHIR client; imaging importing evidence then reaches it second-hand.
      const found = broken(withImport('src/imaging/gradability.ts', 'src/evidence/gather-context.ts'));
      expect(found.some((f) => f.startsWith('imaging never reaches the FHIR client: src/imaging/gradability.ts -> src/evidence/gather-context.ts -> '))).toBe(true);
    });

    it('a type-only import breaks a who-knows-whom rule, not a what-gets-loaded one', () => {
      expect(broken(withImport('src/main.ts', 'src/sandbox/index.ts', true)).join('\n')).toContain('production never imports the sandbox');
      expect(broken(withImport('src/cds/cards.ts', 'onnxruntime-node', true))).toEqual([]);
    });
  });

  it('reads every import form, and none in comments', () => {
    const text = [
      "import a from './a.js';",
      "import type { B } from './b.js';",
      'import {\n  c,\n  type D,\n} from "./c.js";',
      "export { e } from './e.js';",
      "export type { F } from './f.js';",
      "import './g.js';",
      "const h = await import('./h.js');",
      "// import x from './not-me.js';",
      "/* const y = await import('./nor-me.js'); */",
      "const url = 'http://example.org/'; // import z from './not-this.js'",
    ].join('\n');
    expect(importSpecifiers(text)).toEqual(
      expect.arrayContaining([
        { specifier: './a.js', typeOnly: false },
        { specifier: './b.js', typeOnly: true },
        { specifier: './c.js', typeOnly: false },
        { specifier: './e.js', typeOnly: false },
        { specifier: './f.js', typeOnly: true },
        { specifier: './g.js', typeOnly: false },
        { specifier: './h.js', typeOnly: false },
      ]),
    );
    expect(importSpecifiers(text)).toHaveLength(7);
  });
});
