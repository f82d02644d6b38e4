import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redact, redactString } from '../../src/log.js';

const JWT = 'eyJhbGciOiJFUzM4NCJ9.eyJzdWIiOiJwYXRpZW50LTEyMyJ9.c2lnbmF0dXJlLWJ5dGVz';

function capture() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (d: Buffer) => lines.push(...d.toString('utf8').split('\n').filter(Boolean)));
  return { log: createLogger({ destination: stream, level: 'debug' }), lines };
}

describe('log redaction', () => {
  it('scrubs JWTs, bearer credentials, patient references and identifying query values from strings', () => {
    const s = redactString(`Authorization: Bearer abcdefghijklmnop GET Patient/pat-42 ?patient=pat-42&code=x token ${JWT}`);
    expect(s).not.toContain('abcdefghijklmnop');
    expect(s).not.toContain('pat-42');
    expect(s).not.toContain(JWT);
  });

  it('drops secret and identifying keys at any depth', () => {
    const out = redact({ a: { fhirAuthorization: { access_token: 'tok' } }, patientId: 'p1', name: [{ family: 'Doe' }], ok: 3 }) as Record<string, unknown>;
    expect(JSON.stringify(out)).not.toMatch(/tok|p1|Doe/);
    expect(out.ok).toBe(3);
  });

  it('never writes a token or patient identifier to the log stream', async () => {
    const { log, lines } = capture();
    log.info({ headers: { authorization: `Bearer ${JWT}` }, patient: 'Patient/123', detail: `url /fhir/Patient/123?patient=123` }, `calling with ${JWT}`);
    log.error({ err: new Error(`upstream said no for Patient/777 with Bearer ${JWT}`) }, 'failed');
    await new Promise((r) => setImmediate(r));
    const all = lines.join('\n');
    expect(lines.length).toBe(2);
    expect(all).not.toContain(JWT);
    expect(all).not.toMatch(/Patient\/(123|777)/);
    expect(JSON.parse(lines[0]!).level).toBe('info');
  });

  it('handles cycles and errors with causes', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    expect(() => redact(a)).not.toThrow();
    const e = redact(new Error('outer', { cause: new Error(`inner ${JWT}`) })) as { cause: { message: string } };
    expect(e.cause.message).not.toContain(JWT);
  });
});
