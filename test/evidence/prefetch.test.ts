import type { Resource } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { MemoryFhirClient } from '../fhir/memory-client.js';
import { belongsToPatient, classifyPrefetch, fillTemplate, resolveQuery } from '../../src/evidence/prefetch.js';
import { PATIENT_P1 } from './helpers/patient-records.js';

const searchset = (resources: Resource[], extra: Record<string, unknown> = {}) => ({
  resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource, search: { mode: 'match' } })), ...extra,
});
const OO_ERROR = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'forbidden', diagnostics: 'Patient/p1 not allowed' }] };
const EPIC_NO_RESULTS = { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', details: { coding: [{ code: '4101' }], text: 'Resource request returns no results.' } }] };
const CONDITIONS_Q = 'Condition?patient=p1&clinical-status=active';

function base(prefetch: Record<string, unknown> | undefined, fhir?: MemoryFhirClient) {
  return { key: 'conditions', query: CONDITIONS_Q, patientId: 'p1', prefetch, fhir };
}

describe('classifyPrefetch', () => {
  it('tells absent, null, resource, bundle and error apart', () => {
    expect(classifyPrefetch(undefined, 'k').state).toBe('absent');
    expect(classifyPrefetch(null, 'k').state).toBe('absent');
    expect(classifyPrefetch({}, 'k').state).toBe('absent');
    expect(classifyPrefetch({ k: undefined }, 'k').state).toBe('absent');
    expect(classifyPrefetch({ k: null }, 'k').state).toBe('null');
    expect(classifyPrefetch({ k: { resourceType: 'Patient', id: 'p1' } }, 'k').state).toBe('resource');
    const b = classifyPrefetch({ k: searchset([{ resourceType: 'Condition', id: 'c' } as Resource], { link: [{ relation: 'next', url: 'x' }]}) }, 'k');
    expect(b).toMatchObject({ state: 'bundle', next: 'x' });
    for (const junk of [OO_ERROR, '<html>error</html>', [1], 42, { foo: 1 }, { resourceType: 'Bundle', entry: 'nope' }]) {
      expect(classifyPrefetch({ k: junk }, 'k').state).toBe('error');
    }
  });

  it('puts OperationOutcome entries aside', () => {
    const b = classifyPrefetch({ k: { resourceType: 'Bundle', entry: [{ resource: EPIC_NO_RESULTS, search: { mode: 'outcome' } }, { resource: { resourceType: 'Condition' } }, null, {}] } }, 'k');
    expect(b.state === 'bundle' && [b.resources.length, b.outcomes.length]).toEqual([1, 1]);
  });

  it('does not trust prototype keys', () => {
    expect(classifyPrefetch({}, 'constructor').state).toBe('absent');
  });
});

describe('templates and scoping', () => {
  it('fills context tokens, encoding values', () => {
    expect(fillTemplate('Patient/{{context.patientId}}', { patientId: 'p1' })).toBe('Patient/p1');
    expect(fillTemplate('X?e={{ context.encounterId }}', { encounterId: 'a&b' })).toBe('X?e=a%26b');
    expect(fillTemplate('X?e={{context.encounterId}}', {})).toBeUndefined();
    expect(fillTemplate('X?u={{userPractitionerId}}', {})).toBeUndefined();
  });

  it('recognises references to the patient in all usual forms', () => {
    const obs = (reference: string) => ({ resourceType: 'Observation', subject: { reference } }) as Resource;
    expect(belongsToPatient(obs('Patient/p1'), 'p1')).toBe(true);
    expect(belongsToPatient(obs('https://ehr.example/fhir/Patient/p1'), 'p1')).toBe(true);
    expect(belongsToPatient(obs('Patient/p1/_history/3'), 'p1')).toBe(true);
    expect(belongsToPatient(obs('Patient/p10'), 'p1')).toBe(false);
    expect(belongsToPatient(obs('Group/p1'), 'p1')).toBe(false);
    expect(belongsToPatient({ resourceType: 'Patient', id: 'p2' } as Resource, 'p1')).toBe(false);
    expect(belongsToPatient({ resourceType: 'Binary' } as Resource, 'p1')).toBe(true);
  });
});

describe('resolveQuery (prefetch semantics)', () => {
  const conditions = PATIENT_P1.filter((r) => r.resourceType === 'Condition');

  it('absent key: fetches it', async () => {
    const fhir = new MemoryFhirClient(PATIENT_P1);
    const r = await resolveQuery(base({}, fhir));
    expect(r.origin).toBe('fetched');
    expect(r.resources.length).toBe(5); // the server applies clinical-status=active
    expect(fhir.calls).toEqual(['search Condition']);
  });

  it('null: no data, no fetch', async () => {
    const fhir = new MemoryFhirClient(PATIENT_P1);
    const r = await resolveQuery(base({ conditions: null }, fhir));
    expect([r.origin, r.resources.length, r.problems.length, fhir.calls.length]).toEqual(['prefetch', 0, 0, 0]);
  });

  it('a Bundle is used as given; Epic "no results" outcomes are not problems', async () => {
    const fhir = new MemoryFhirClient(PATIENT_P1);
    const r = await resolveQuery(base({ conditions: searchset(conditions) }, fhir));
    expect([r.origin, r.resources.length, fhir.calls.length]).toEqual(['prefetch', 6, 0]);
    const empty = await resolveQuery(base({ conditions: { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: EPIC_NO_RESULTS, search: { mode: 'outcome' } }] } }, fhir));
    expect([empty.resources.length, empty.problems.length, fhir.calls.length]).toEqual([0, 0, 0]);
  });

  it.each([
    ['an OperationOutcome', OO_ERROR],
    ['an HTML error page', '<!DOCTYPE html><html>502 Bad Gateway</html>'],
    ['a Bundle with only an error outcome', { resourceType: 'Bundle', entry: [{ resource: OO_ERROR, search: { mode: 'outcome' } }] }],
    ['the wrong resource type', { resourceType: 'Patient', id: 'p1' }],
  ])('%s: reports a problem, then fetches', async (_n, value) => {
    const fhir = new MemoryFhirClient(PATIENT_P1);
    const r = await resolveQuery(base({ conditions: value }, fhir));
    expect(r.problems.map((p) => p.kind)).toEqual(['prefetch_error']);
    expect(r.problems[0].message).not.toContain('p1');
    expect([r.origin, r.resources.length]).toEqual(['fetched', 5]);
  });

  it('drops resources about another patient', async () => {
    const stray = { resourceType: 'Condition', id: 'z', subject: { reference: 'Patient/p2' }, code: { text: 'Glaucoma' } } as Resource;
    const r = await resolveQuery(base({ conditions: searchset([...conditions, stray]) }));
    expect(r.resources.length).toBe(6);
    expect(r.problems.map((p) => p.kind)).toEqual(['prefetch_error']);
  });

  it('refetches a prefetched Patient that is someone else', async () => {
    const fhir = new MemoryFhirClient(PATIENT_P1);
    const r = await resolveQuery({ key: 'patient', query: 'Patient/p1', patientId: 'p1', prefetch: { patient: { resourceType: 'Patient', id: 'p2' } }, fhir });
    expect([r.origin, r.resources[0]?.id, r.problems.map((p) => p.kind)]).toEqual(['fetched', 'p1', ['prefetch_error']]);
  });

  it('follows a paginated prefetch with the FHIR client', async () => {
    const fhir = new MemoryFhirClient(PATIENT_P1);
    const r = await resolveQuery(base({ conditions: searchset(conditions, { link: [{ relation: 'next', url: 'memory://fhir/Condition?page=2' }] }) }, fhir));
    expect([r.origin, fhir.calls]).toEqual(['prefetch+fetched', ['continue']]);
    const offline = await resolveQuery(base({ conditions: searchset(conditions, { link: [{ relation: 'next', url: 'x' }] }) }));
    expect(offline.problems.map((p) => p.kind)).toEqual(['truncated']);
  });

  it('without FHIR access, a missing key is missing data', async () => {
    const r = await resolveQuery({ ...base(undefined), severity: 'error' });
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'missing_data', severity: 'error' })]);
    expect(r.origin).toBe('none');
  });

  it('a failed fetch becomes a typed problem, not an exception', async () => {
    const failing = new MemoryFhirClient([]);
    failing.search = async () => { throw new AppError('upstream_timeout', 'http://x: request timed out'); };
    const r = await resolveQuery(base({}, failing));
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'fhir_error', code: 'upstream_timeout', source: 'conditions' })]);
    const notFound = await resolveQuery({ key: 'patient', query: 'Patient/nope', patientId: 'nope', fhir: new MemoryFhirClient([]), severity: 'error' });
    expect(notFound.problems).toEqual([expect.objectContaining({ kind: 'missing_data', severity: 'error' })]);
  });
});
