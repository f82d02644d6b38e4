import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import {
  allowedScopes,
  decideAccess,
  parseScope,
  parseScopes,
  type FhirInteraction,
} from '../../src/sandbox/smart-scopes.js';

describe('parseScope', () => {
  it.each([
    ['patient/Observation.rs', 'patient', 'Observation', 'rs', 2, undefined],
    ['patient/DiagnosticReport.c', 'patient', 'DiagnosticReport', 'c', 2, undefined],
    ['user/*.cruds', 'user', '*', 'cruds', 2, undefined],
    ['system/*.rs', 'system', '*', 'rs', 2, undefined],
    ['patient/*.read', 'patient', '*', 'rs', 1, undefined],
    ['user/Patient.write', 'user', 'Patient', 'cud', 1, undefined],
    ['system/*.*', 'system', '*', 'cruds', 1, undefined],
    [
      'patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs',
      'patient',
      'Observation',
      'rs',
      2,
      'category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs',
    ],
  ] as const)('%s', (raw, context, type, perms, version, constraint) => {
    const s = parseScope(raw)!;
    expect(s.context).toBe(context);
    expect(s.resourceType).toBe(type);
    expect([...s.permissions].sort().join('')).toBe([...perms].sort().join(''));
    expect(s.version).toBe(version);
    expect(s.constraint).toBe(constraint);
  });

  it.each(['launch', 'launch/patient', 'openid', 'fhirUser', 'offline_access'])('%s is not a resource scope', (raw) => {
    expect(parseScope(raw)).toBeUndefined();
  });

  it.each(['patient/Observation.sr', 'user/*.rr', 'patient/Observation.', 'system/observation.rs', 'patient/*.read?x=1', 'user/*.x'])(
    '%s is malformed',
    (raw) => {
      expect(() => parseScope(raw)).toThrow(AppError);
    },
  );

  it('splits a scope string into resource and other scopes', () => {
    const p = parseScopes('launch openid  patient/*.rs fhirUser');
    expect(p.resource.map((s) => s.raw)).toEqual(['patient/*.rs']);
    expect(p.other).toEqual(['launch', 'openid', 'fhirUser']);
  });
});

describe('decideAccess', () => {
  const cases: Array<[string, FhirInteraction, string, string | undefined, boolean, string | undefined]> = [
    // scope, interaction, type, token patient, allowed, compartment patient
    ['patient/Observation.rs', 'read', 'Observation', 'p1', true, 'p1'],
    ['patient/Observation.rs', 'search', 'Observation', 'p1', true, 'p1'],
    ['patient/Observation.rs', 'create', 'Observation', 'p1', false, undefined],
    ['patient/Observation.rs', 'read', 'DiagnosticReport', 'p1', false, undefined],
    ['patient/DiagnosticReport.c', 'create', 'DiagnosticReport', 'p1', true, 'p1'],
    ['patient/DiagnosticReport.c', 'read', 'DiagnosticReport', 'p1', false, undefined],
    ['patient/*.rs', 'read', 'Patient', undefined, false, undefined],
    ['user/*.cruds', 'delete', 'Encounter', undefined, true, undefined],
    ['user/*.rs', 'update', 'Encounter', undefined, false, undefined],
    ['system/*.rs', 'search', 'ImagingStudy', undefined, true, undefined],
    ['system/*.rs', 'patch', 'ImagingStudy', undefined, false, undefined],
    ['patient/*.read', 'vread', 'Condition', 'p1', true, 'p1'],
    ['patient/*.write', 'update', 'Condition', 'p1', true, 'p1'],
    ['patient/*.write', 'search', 'Condition', 'p1', false, undefined],
    ['user/Patient.*', 'delete', 'Patient', undefined, true, undefined],
    ['patient/*.rs user/Observation.rs', 'read', 'Observation', 'p1', true, undefined],
    ['patient/*.rs user/Observation.rs', 'read', 'Encounter', 'p1', true, 'p1'],
    ['launch openid', 'read', 'Patient', 'p1', false, undefined],
  ];
  it.each(cases)('%s %s %s (patient %s) -> %s', (scope, interaction, type, patient, allowed, compartment) => {
    const d = decideAccess(parseScopes(scope), interaction, type, patient);
    expect(d.allowed).toBe(allowed);
    if (d.allowed) expect(d.patient).toBe(compartment);
    else expect(d.reason).toMatch(/scope/);
  });

  it('reports constraints only when every granting scope is constrained', () => {
    const c = 'category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs';
    const only = decideAccess(parseScopes(`patient/Observation.rs?${c}`), 'search', 'Observation', 'p1');
    expect(only.allowed && only.constraints).toEqual([c]);
    const mixed = decideAccess(parseScopes(`patient/Observation.rs?${c} patient/*.rs`), 'search', 'Observation', 'p1');
    expect(mixed.allowed && mixed.constraints).toBeUndefined();
  });
});

describe('allowedScopes', () => {
  it.each([
    ['patient/Observation.rs launch openid', 'patient/*.rs launch openid fhirUser', ['patient/Observation.rs', 'launch', 'openid']],
    ['patient/Observation.cruds', 'patient/*.rs', []],
    ['user/*.rs', 'patient/*.cruds', []],
    ['system/DiagnosticReport.c system/Observation.rs', 'system/*.cruds', ['system/DiagnosticReport.c', 'system/Observation.rs']],
    ['patient/*.read', 'patient/*.rs', ['patient/*.read']],
    ['patient/Observation.sr offline_access', 'patient/*.cruds', []],
    [undefined, 'patient/*.rs', []],
  ] as const)('requested %s, registered %s', (requested, registered, expected) => {
    expect(allowedScopes(requested, registered)).toEqual(expected);
  });
});
