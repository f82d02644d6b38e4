/**
 * Seeded property-based fuzzing (issue 14): hostile JSON arbitraries and the run settings shared by
 * test/fuzz/*.test.ts. The seed is fixed (reproducible in CI) and can be changed with VOLMO_FUZZ_SEED;
 * fast-check prints the seed and the shrunk counterexample path of a failure. Re-run one failure with
 * VOLMO_FUZZ_SEED=<seed> npx vitest run test/fuzz/<file>.
 */
import fc from 'fast-check';
import type { Parameters } from 'fast-check';
import type { Eye, ProblemKind } from '../../src/evidence/types.js';

export const FUZZ_SEED = Number.parseInt(process.env.VOLMO_FUZZ_SEED ?? '20260114', 10);

/** fast-check settings: the seed, a run count, and the seed named in every failure message. */
export function fuzzRuns<T>(numRuns: number): Parameters<T> {
  return {
    seed: FUZZ_SEED,
    numRuns,
    reporter: (details) => {
      if (details.failed) throw new Error(`${fc.defaultReportMessage(details)}\n(reproduce: VOLMO_FUZZ_SEED=${details.seed})`);
    },
  };
}

/** An object built the way JSON.parse builds one: '__proto__' and friends become own data properties. */
export function jsonObject(entries: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

export const PROTO_KEYS = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'prototype', 'then'] as const;

/** Leaves an attacker would try: wrong types, nulls, empty and huge strings, objects posing as strings, prototype names. */
export const hostileLeaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 5, 1e308, -0, '', ' ', 'null', 'undefined', '💥', 'x'.repeat(5000), ...PROTO_KEYS),
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constant(null).map(() => jsonObject([['toString', 1]])),
  fc.constant(null).map(() => jsonObject([['__proto__', jsonObject([['code', 'OP']])]])),
  fc.constant(null).map(() => jsonObject([['valueOf', jsonObject([])], ['toString', null]])),
);

const key = fc.oneof(fc.constantFrom(...PROTO_KEYS, 'resourceType', 'coding', 'code', 'entry', 'resource', 'reference', 'value'), fc.string({ maxLength: 8 }));

/** Arbitrary hostile JSON, nesting bounded (a few levels; deep nesting has its own generator). */
export const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    hostileLeaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(fc.tuple(key, tie('value')), { maxLength: 4 }).map(jsonObject),
  ),
})).value;

/** `depth` Bundles around `inner`, built without recursion. */
export function nestBundles(inner: unknown, depth: number): unknown {
  let b = inner;
  for (let i = 0; i < depth; i++) b = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: b }] };
  return b;
}

type Path = (string | number)[];

/** Every path into a JSON value (iterative). */
function pathsOf(root: unknown): Path[] {
  const out: Path[] = [];
  const stack: [unknown, Path][] = [[root, []]];
  while (stack.length > 0) {
    const [v, p] = stack.pop()!;
    if (p.length > 0) out.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => stack.push([x, [...p, i]]));
    else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) stack.push([(v as Record<string, unknown>)[k], [...p, k]]);
  }
  return out;
}

/** A deep copy with `value` put at `path`, or, where the path ends in an array, inserted next to it. */
function mutate(root: unknown, path: Path, value: unknown, insert: boolean): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (Array.isArray(root)) {
    const copy = [...root];
    if (rest.length === 0 && insert) copy.splice(head as number, 0, value);
    else copy[head as number] = mutate(copy[head as number], rest, value, insert);
    return copy;
  }
  const o = root as Record<string, unknown>;
  return jsonObject(Object.keys(o).map((k) => [k, k === head ? mutate(o[k], rest, value, insert) : o[k]] as const));
}

/**
 * A well-formed record with up to `max` of its elements replaced by (or, in arrays, joined by) hostile
 * values: most of the record stays valid, so the code behind the first type check is reached too.
 */
export function mutated<T>(templates: readonly T[], max = 4): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.constantFrom(...templates), fc.array(fc.tuple(fc.nat(), fc.oneof(hostileLeaf, hostileJson), fc.boolean()), { maxLength: max }))
    .map(([t, edits]) => {
      let r: unknown = t;
      for (const [at, value, insert] of edits) {
        const paths = pathsOf(r);
        if (paths.length === 0) break;
        r = mutate(r, paths[at % paths.length]!, value, insert);
      }
      return r;
    });
}

const ALL_KINDS: Record<ProblemKind, true> = {
  missing_data: true, prefetch_error: true, fhir_error: true, fhir_warning: true, malformed_resource: true, unit_unknown: true,
  note_truncated: true, note_unreadable: true, pacs_unreachable: true, image_rejected: true, image_ungradable: true, image_duplicate: true, truncated: true,
};
export const PROBLEM_KINDS: ReadonlySet<string> = new Set(Object.keys(ALL_KINDS));
export const EYES: ReadonlySet<Eye | undefined> = new Set<Eye | undefined>(['right', 'left', 'both', 'unknown', undefined]);
