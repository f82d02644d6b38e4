/**
 * Seeded fuzzing of what reads EHR records: the prefetch resolver (classify + resolve, with and without a
 * FHIR server), the record extractors behind the boundary screen (gatherClinicalContext), and image
 * selection. Properties: nothing throws, every output stays in its vocabulary, every problem is typed.
 */
import type { Resource } from 'fhir/r4.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assembleEvidenceBundle } from '../../src/evidence/assemble.js';
import { gatherClinicalContext } from '../../src/evidence/gather-context.js';
import { classifyPrefetch, resolveQuery } from '../../src/evidence/prefetch.js';
import type { Problem } from '../../src/evidence/types.js';
import type { FhirClient } from '../../src/fhir/client.js';
import { selectImages } from '../../src/imaging/select.js';
import { NOW } from '../evidence/helpers/patient-records.js';
import { EYES, fuzzRuns, hostileJson, nestBundles, PROBLEM_KINDS } from './arbitraries.js';
import { prefetch, prefetchValue, record } from './records.js';

/** A FHIR server that answers every read and search with the given (hostile) resources. */
function serverWith(resources: unknown[]): FhirClient {
  const result = { resources: resources as Resource[], outcomes: [], truncated: false, pages: 1 };
  return {
    baseUrl: 'memory://fuzz',
    read: async () => (resources[0] ?? { resourceType: 'Patient', id: 'p1' }) as never,
    search: async () => result as never,
    continueSearch: async () => result as never,
    readBinary: async () => ({ contentType: 'text/plain', data: new Uint8Array([104, 105]) }),
    readAttachment: async () => ({ contentType: 'text/plain', data: new Uint8Array([104, 105]) }),
  };
}

function expectTyped(problems: readonly Problem[]): void {
  for (const p of problems) {
    expect(PROBLEM_KINDS.has(p.kind), p.kind).toBe(true);
    expect(['info', 'warning', 'error']).toContain(p.severity);
    expect(typeof p.message).toBe('string');
    expect(typeof p.source).toBe('string');
  }
}

describe('fuzz: prefetch resolver', () => {
  it('classifies any prefetch value and resolves it without throwing (1,000 cases)', async () => {
    await fc.assert(
      fc.asyncProperty(prefetchValue, fc.boolean(), async (value, withServer) => {
        expect(['absent', 'null', 'resource', 'bundle', 'error']).toContain(classifyPrefetch({ media: value }, 'media').state);
        const r = await resolveQuery({ key: 'media', query: 'Media?patient=p1', patientId: 'p1', prefetch: { media: value }, fhir: withServer ? serverWith([value]) : undefined });
        for (const res of r.resources) expect(typeof res.resourceType).toBe('string');
        expect(r.resources.some((x) => x.resourceType === 'Bundle')).toBe(false);
        expectTyped(r.problems);
      }),
      fuzzRuns(1000),
    );
  });
});

describe('fuzz: record extractors behind the boundary', () => {
  it('gathers a clinical context from hostile prefetch and hostile FHIR answers; outputs stay in vocabulary (500 cases)', async () => {
    await fc.assert(
      fc.asyncProperty(prefetch, fc.array(record, { maxLength: 6 }), fc.boolean(), async (pf, served, withServer) => {
        const c = await gatherClinicalContext(withServer ? serverWith(served) : undefined, { patientId: 'p1', now: NOW, prefetch: pf });
        const p = c.patient;
        expect(p.ageYears === undefined || (Number.isInteger(p.ageYears) && p.ageYears >= 0 && p.ageYears < 130)).toBe(true);
        expect([undefined, 'male', 'female', 'other', 'unknown']).toContain(p.sex);
        for (const cond of p.conditions) {
          expect(['diabetes', 'hypertension', 'glaucoma']).toContain(cond.category);
          expect(EYES.has(cond.eye)).toBe(true);
          expect(typeof cond.coding.display).toBe('string');
        }
        for (const m of p.medications) expect(EYES.has(m.eye) && typeof m.coding.display === 'string').toBe(true);
        for (const v of [p.hba1c?.percent, p.bloodPressure?.systolicMmHg, p.iop.right?.mmHg, p.iop.left?.mmHg, p.visualAcuity.right?.logMar, p.visualAcuity.left?.logMar]) {
          expect(v === undefined || Number.isFinite(v)).toBe(true);
        }
        for (const n of p.notes) expect(typeof n.text).toBe('string');
        expectTyped(c.problems);
        expect(typeof assembleEvidenceBundle({ context: c }).caseText).toBe('string');
      }),
      fuzzRuns(500),
    );
  });
});

describe('fuzz: image selection', () => {
  it('selects from hostile resources without throwing; every reference is well-typed (1,500 cases)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(record, hostileJson), { maxLength: 6 }), fc.nat(8), (rs, depth) => {
        for (const ref of selectImages([nestBundles({ resourceType: 'Bundle', entry: rs.map((resource) => ({ resource })) }, depth)])) {
          expect(EYES.has(ref.eye)).toBe(true);
          expect([undefined, 'OP', 'OPT']).toContain(ref.modality);
          expect(['ImagingStudy', 'Media', 'DocumentReference', 'Binary']).toContain(ref.resourceType);
          const s = ref.source;
          if (s.kind === 'dicomweb') expect([s.study, s.series ?? '', s.instance ?? '', s.endpoint ?? ''].every((x) => typeof x === 'string')).toBe(true);
          else expect([s.url ?? '', s.data ?? '', s.contentType ?? ''].every((x) => typeof x === 'string') && (s.size === undefined || typeof s.size === 'number')).toBe(true);
          expect(ref.acquired === undefined || typeof ref.acquired === 'string').toBe(true);
        }
      }),
      fuzzRuns(1500),
    );
  });
});
