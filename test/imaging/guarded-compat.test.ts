import { expect, it } from 'vitest';
import type { GuardedFetch } from '../../src/net/guarded-fetch.js';
import type { HttpFetch } from '../../src/imaging/http.js';

it('the guarded fetch of src/net plugs into the imaging HttpFetch port (type-level)', () => {
  const asHttp = (g: GuardedFetch): HttpFetch => g; // compile-time check (tsc)
  expect(typeof asHttp).toBe('function');
});
