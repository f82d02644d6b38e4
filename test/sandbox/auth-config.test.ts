import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { assertValidClient, type SandboxClient } from '../../src/sandbox/auth/clients.js';
import { LaunchStore } from '../../src/sandbox/auth/launch-contexts.js';

const ok: SandboxClient = { clientId: 'app', kind: 'public', redirectUris: ['http://127.0.0.1:3000/cb'], scope: 'launch patient/*.rs' };
const jwks = { keys: [{ kty: 'EC', crv: 'P-384', x: 'x', y: 'y' }] };

describe('sandbox client registration', () => {
  it('accepts valid public, confidential and backend clients', () => {
    expect(() => assertValidClient(ok)).not.toThrow();
    expect(() => assertValidClient({ ...ok, kind: 'confidential-asymmetric', jwks })).not.toThrow();
    expect(() => assertValidClient({ clientId: 'svc', kind: 'backend', scope: 'system/*.rs', jwksUri: 'http://127.0.0.1:1/jwks' })).not.toThrow();
  });

  it.each([
    ['bad client id', { ...ok, clientId: 'has space' }, /clientId/],
    ['malformed scope', { ...ok, scope: 'patient/Observation.sr' }, /cruds/],
    ['app without redirect', { ...ok, redirectUris: [] }, /redirectUris/],
    ['backend without keys', { clientId: 'svc', kind: 'backend', scope: 'system/*.rs' }, /jwks/],
    ['both jwks and jwksUri', { ...ok, kind: 'confidential-asymmetric', jwks, jwksUri: 'http://127.0.0.1:1/j' }, /exactly one/],
    ['public with keys', { ...ok, jwks }, /no keys/],
    ['relative redirect', { ...ok, redirectUris: ['/cb'] }, /absolute/],
  ] as Array<[string, SandboxClient, RegExp]>)('refuses %s with config_invalid', (_name, client, message) => {
    try {
      assertValidClient(client);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('config_invalid');
      expect((err as AppError).message).toMatch(message);
    }
  });
});

describe('LaunchStore', () => {
  it('hands out one-time, expiring launch ids', () => {
    let now = 1_000;
    const store = new LaunchStore(60_000, () => now);
    const a = store.create({ patient: 'p1', encounter: 'e1', fhirUser: 'Practitioner/d1' });
    const b = store.create({ patient: 'p2' });
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(store.take(a)).toEqual({ patient: 'p1', encounter: 'e1', fhirUser: 'Practitioner/d1' });
    expect(store.take(a)).toBeUndefined();
    now += 60_001;
    expect(store.take(b)).toBeUndefined();
  });

  it.each([[{ patient: 'has/slash' }], [{ encounter: '' }], [{ fhirUser: 'Organization/1' }], [{ fhirUser: 'p1' }]])(
    'refuses %j',
    (ctx) => {
      expect(() => new LaunchStore().create(ctx)).toThrow(TypeError);
    },
  );
});
