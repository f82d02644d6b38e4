import { describe, expect, it } from 'vitest';
import { parseMediaType, parseMultipart } from '../../src/imaging/multipart.js';

const CRLF = '\r\n';

describe('multipart/related parsing', () => {
  it('splits parts with headers, quoted boundary, preamble and epilogue, keeping binary bodies intact', () => {
    const bin = Buffer.from([0, 13, 10, 45, 45, 255, 13, 10]);
    const body = Buffer.concat([
      Buffer.from(`ignored preamble${CRLF}--abc:1${CRLF}Content-Type: application/dicom${CRLF}X-Other:  v ${CRLF}${CRLF}`),
      bin,
      Buffer.from(`${CRLF}--abc:1${CRLF}Content-Type: image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50${CRLF}${CRLF}JPEGDATA${CRLF}--abc:1--${CRLF}epilogue`),
    ]);
    const parts = parseMultipart(body, 'multipart/related; type="application/dicom"; boundary="abc:1"');
    expect(parts).toHaveLength(2);
    expect(parts[0].body.equals(bin)).toBe(true);
    expect(parts[0].headers['x-other']).toBe('v');
    expect(parts[1].contentType).toBe('image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50');
    expect(parts[1].body.toString()).toBe('JPEGDATA');
  });

  it('accepts a body that starts with the boundary and a part without headers', () => {
    const parts = parseMultipart(Buffer.from(`--b${CRLF}${CRLF}x${CRLF}--b--`), 'multipart/related; boundary=b');
    expect(parts.map((p) => p.body.toString())).toEqual(['x']);
  });

  it('refuses truncated bodies, missing boundaries and non-multipart types with typed errors', () => {
    expect(() => parseMultipart(Buffer.from(`--b${CRLF}Content-Type: a/b${CRLF}${CRLF}half a bo`), 'multipart/related; boundary=b')).toThrow(/truncated/);
    expect(() => parseMultipart(Buffer.from('x'), 'multipart/related')).toThrow(/no boundary/);
    expect(() => parseMultipart(Buffer.from('{}'), 'application/json')).toThrow(/content type/);
    expect(() => parseMultipart(Buffer.from('<html>'), 'multipart/related; boundary=zz')).toThrow(/first boundary/);
    try {
      parseMultipart(Buffer.from('x'), 'multipart/related');
    } catch (err) {
      expect((err as { code: string }).code).toBe('upstream_error');
    }
  });

  it('parses media type parameters', () => {
    expect(parseMediaType('Multipart/Related; Type="application/dicom"; transfer-syntax=*')).toEqual({
      type: 'multipart/related',
      params: { type: 'application/dicom', 'transfer-syntax': '*' },
    });
  });
});
