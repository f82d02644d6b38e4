import { describe, expect, it } from 'vitest';
import { isLoopbackHost, NonLoopbackConnectionError } from './loopback-guard.js';

describe('test network guard', () => {
  it('classifies loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['10.0.0.1', '169.254.169.254', 'example.org', '192.168.1.1', '::2']) expect(isLoopbackHost(h)).toBe(false);
  });

  it('refuses a non-loopback fetch before connecting', async () => {
    const err = await fetch('http://192.0.2.1:8080/').catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    const cause = (err as Error & { cause?: unknown }).cause;
    expect(cause).toBeInstanceOf(NonLoopbackConnectionError);
  });
});
