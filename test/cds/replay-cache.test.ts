import { describe, expect, it } from 'vitest';
import { MemoryReplayCache } from '../../src/cds/replay-cache.js';

describe('JWT replay cache', () => {
  it('refuses a jti until it expires', async () => {
    let now = 0;
    const c = new MemoryReplayCache(() => now, 10);
    expect(await c.checkAndRemember('a', 1000)).toBe(true);
    expect(await c.checkAndRemember('a', 1000)).toBe(false);
    now = 1001;
    expect(await c.checkAndRemember('a', 2000)).toBe(true);
  });

  it('when full of unexpired ids it fails closed instead of forgetting one', async () => {
    let now = 0;
    const c = new MemoryReplayCache(() => now, 3);
    for (const id of ['a', 'b', 'c']) expect(await c.checkAndRemember(id, 1000)).toBe(true);
    expect(await c.checkAndRemember('d', 1000)).toBe(false);
    expect(await c.checkAndRemember('a', 1000)).toBe(false); // still remembered
    now = 1001; // all expired: room again
    expect(await c.checkAndRemember('d', 2000)).toBe(true);
  });
});
