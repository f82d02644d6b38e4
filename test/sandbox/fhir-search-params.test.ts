import { describe, expect, it } from 'vitest';
import { OperationOutcomeError } from '@medplum/core';
import { loadFhirDefinitions } from '../../src/sandbox/fhir/definitions.js';
import { MAX_PAGE_SIZE, pageWindow, pagingLinks, unknownSearchParams } from '../../src/sandbox/fhir/search-params.js';

loadFhirDefinitions();

describe('unknownSearchParams', () => {
  it.each([
    ['Observation', ['patient', 'code', '_count', '_sort', '_include'], []],
    ['Observation', ['code:text', 'subject:Patient.name', 'date'], []],
    ['Observation', ['colour', 'patient', '_bogus'], ['colour', '_bogus']],
    ['Patient', ['_id', 'family', 'birthdate', 'identifier'], []],
    ['Patient', ['_has:Observation:patient:code'], ['_has:Observation:patient:code']],
    ['ImagingStudy', ['modality', 'patient', 'started'], []],
  ] as const)('%s %j', (type, names, expected) => {
    expect(unknownSearchParams(type, names)).toEqual(expected);
  });
});

describe('paging', () => {
  it('applies defaults and bounds, and rejects non-integers', () => {
    expect(pageWindow(new URLSearchParams(''))).toEqual({ count: 50, offset: 0 });
    expect(pageWindow(new URLSearchParams('_count=100000&_offset=7'))).toEqual({ count: MAX_PAGE_SIZE, offset: 7 });
    expect(() => pageWindow(new URLSearchParams('_count=-1'))).toThrow(OperationOutcomeError);
    expect(() => pageWindow(new URLSearchParams('_offset=1.5'))).toThrow(OperationOutcomeError);
  });

  it.each([
    [0, 10, 25, ['self', 'first', 'next'], 10],
    [10, 10, 25, ['self', 'first', 'previous', 'next'], 20],
    [20, 10, 25, ['self', 'first', 'previous'], undefined],
    [0, 10, 10, ['self', 'first'], undefined],
  ] as const)('offset %i count %i total %i', (offset, count, total, relations, nextOffset) => {
    const links = pagingLinks('http://h/fhir/R4/Observation', new URLSearchParams('patient=Patient/1&_offset=3'), { offset, count }, total);
    expect(links.map((l) => l.relation)).toEqual(relations);
    const next = links.find((l) => l.relation === 'next');
    if (nextOffset === undefined) expect(next).toBeUndefined();
    else {
      const u = new URL(next!.url!);
      expect(u.searchParams.get('_offset')).toBe(String(nextOffset));
      expect(u.searchParams.get('_count')).toBe(String(count));
      expect(u.searchParams.get('patient')).toBe('Patient/1');
    }
  });
});
