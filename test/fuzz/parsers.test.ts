/**
 * Seeded fuzzing of the two parsers that read text from outside: the CDS Hooks request parser (any body
 * either parses or is refused with a 4xx AppError) and the model-output parser (any text gives a result in
 * its vocabulary; a digit only from the allowed set).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCdsRequest, type HookName } from '../../src/cds/request-schema.js';
import { AppError } from '../../src/errors.js';
import { parseBooleanAnswer, parseDigitAnswer, stripLeadingDecoration } from '../../src/findings/parse.js';
import { fuzzRuns, hostileJson, mutated } from './arbitraries.js';

const HOOKS: HookName[] = ['patient-view', 'order-select', 'order-sign'];
const draftOrders = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'ServiceRequest', id: 'sr1', status: 'draft' } }] };
const VALID = [
  { hook: 'patient-view', hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea', context: { userId: 'Practitioner/1', patientId: 'p1', encounterId: 'e1' }, prefetch: { patient: { resourceType: 'Patient', id: 'p1' } } },
  { hook: 'order-select', hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2eb', context: { userId: 'PractitionerRole/2', patientId: 'p1', selections: ['ServiceRequest/sr1'], draftOrders } },
  {
    hook: 'order-sign', hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ec', fhirServer: 'https://ehr.example.org/fhir',
    fhirAuthorization: { access_token: 'tok', token_type: 'Bearer', expires_in: 300, scope: 'patient/*.read', subject: 'volmo', patient: 'p1' },
    context: { userId: 'Practitioner/1', patientId: 'p1', draftOrders }, extension: { 'com.example': 1 },
  },
];

describe('fuzz: CDS Hooks request parser', () => {
  it('parses or refuses with a 4xx AppError, never anything else (2,000 cases)', () => {
    fc.assert(
      fc.property(fc.oneof({ weight: 4, arbitrary: mutated(VALID, 3) }, { weight: 1, arbitrary: hostileJson }), fc.constantFrom(...HOOKS), (body, hook) => {
        let parsed;
        try {
          parsed = parseCdsRequest(body, hook);
        } catch (err) {
          expect(err).toBeInstanceOf(AppError);
          expect((err as AppError).status).toBeGreaterThanOrEqual(400);
          expect((err as AppError).status).toBeLessThan(500);
          return;
        }
        expect(parsed.hook).toBe(hook);
        expect(typeof parsed.context.patientId).toBe('string');
        expect(typeof parsed.context.userId).toBe('string');
        expect(parsed.prefetch === undefined || (typeof parsed.prefetch === 'object' && !Array.isArray(parsed.prefetch))).toBe(true);
      }),
      fuzzRuns(2000),
    );
  });

  it('still accepts the valid requests (the fuzz reaches past the parser)', () => {
    for (const body of VALID) expect(parseCdsRequest(body, body.hook as HookName).hook).toBe(body.hook);
  });
});

/** Answer-like text: decoration, an answer token or a digit, then anything. */
const answerish = fc
  .tuple(
    fc.constantFrom('', ' ', '**', '> ', '- ', '"', '`', '# ', '\u3000', '\uFEFF', '(', '_'),
    fc.constantFrom('TRUE', 'false', 'Yes', 'NO', 'True.', 'TRUE or FALSE', '0', '2', '4', '7', '2.5', '23', '2 or 3', '2-3', '2/3', 'Grade 2', 'maybe', ''),
    fc.string({ maxLength: 40 }),
  )
  .map(([a, b, c]) => `${a}${b}${c}`);
const anyText = fc.oneof(answerish, fc.string({ maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 }), fc.constant('x'.repeat(20_000)));
const REASONS = ['empty', 'no-leading-answer', 'ambiguous', 'out-of-vocabulary', 'not-a-candidate', 'no-answer'];

describe('fuzz: model-output parser', () => {
  it('a boolean answer is TRUE/FALSE or a named unparseable reason (3,000 cases)', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const r = parseBooleanAnswer(text);
        if (r.kind === 'boolean') expect(typeof r.value).toBe('boolean');
        else expect([r.kind, REASONS.includes(r.reason)]).toEqual(['unparseable', true]);
        expect(typeof stripLeadingDecoration(text)).toBe('string');
      }),
      fuzzRuns(3000),
    );
  });

  it('a digit answer is one of the allowed digits or a named unparseable reason (3,000 cases)', () => {
    fc.assert(
      fc.property(anyText, fc.uniqueArray(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 5 }), (text, allowed) => {
        const r = parseDigitAnswer(text, allowed);
        if (r.kind === 'digit') expect(allowed).toContain(r.value);
        else expect([r.kind, REASONS.includes(r.reason)]).toEqual(['unparseable', true]);
      }),
      fuzzRuns(3000),
    );
  });

  it('reads what it should (the generator reaches the answer paths)', () => {
    expect(parseBooleanAnswer('**TRUE**')).toEqual({ kind: 'boolean', value: true });
    expect(parseDigitAnswer('> 2', [0, 1, 2, 3, 4])).toEqual({ kind: 'digit', value: 2 });
    expect(parseDigitAnswer('2 or 3', [2, 3])).toEqual({ kind: 'unparseable', reason: 'ambiguous' });
  });
});
