/**
 * multipart/related bodies (RFC 2046 / DICOM PS3.18 WADO-RS) → parts, without copying part bodies.
 */
import { AppError } from '../errors.js';

export interface MultipartPart {
  /** Header names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  readonly contentType?: string;
  readonly body: Buffer;
}

export interface MediaType {
  readonly type: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses `type/subtype; a=b; c="d;e"` (parameter names lower-cased, quotes removed). */
export function parseMediaType(value: string): MediaType {
  const params: Record<string, string> = {};
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const re = /;\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  const rest = semi < 0 ? '' : value.slice(semi);
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    let v = m[2].trim();
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params[m[1].toLowerCase()] = v;
  }
  return { type, params };
}

function malformed(detail: string): AppError {
  return new AppError('upstream_error', `malformed multipart response: ${detail}`);
}

export function parseMultipart(body: Buffer, contentType: string, maxParts = 10_000): MultipartPart[] {
  const mt = parseMediaType(contentType);
  if (!mt.type.startsWith('multipart/')) throw malformed(`content type is ${mt.type || '(none)'}`);
  const boundary = mt.params.boundary;
  if (!boundary || boundary.length > 200) throw malformed('no boundary parameter');
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  const next = Buffer.from(`\r\n--${boundary}`, 'latin1');
  let pos = body.subarray(0, delim.length).equals(delim) ? 0 : body.indexOf(next);
  if (pos < 0) throw malformed('first boundary not found');
  if (pos > 0) pos += 2; // skip the CRLF of the preamble
  const parts: MultipartPart[] = [];
  for (;;) {
    pos += delim.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // close delimiter
    const eol = body.indexOf('\r\n', pos, 'latin1');
    if (eol < 0) throw malformed('truncated after a boundary');
    const headEnd = body.indexOf('\r\n\r\n', eol, 'latin1');
    const headers: Record<string, string> = {};
    let bodyStart: number;
    if (headEnd === eol) {
      bodyStart = eol + 4;
    } else if (body[eol + 2] === 0x0d && body[eol + 3] === 0x0a) {
      bodyStart = eol + 4; // no headers at all
    } else {
      if (headEnd < 0) throw malformed('part headers not terminated');
      for (const line of body.toString('latin1', eol + 2, headEnd).split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      bodyStart = headEnd + 4;
    }
    const end = body.indexOf(next, bodyStart);
    if (end < 0) throw malformed('part not terminated by a boundary (truncated body?)');
    parts.push({ headers, contentType: headers['content-type'], body: body.subarray(bodyStart, end) });
    if (parts.length > maxParts) throw malformed('too many parts');
    pos = end + 2;
  }
}
