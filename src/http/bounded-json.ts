/**
 * Request bodies read only when asked (after authentication), with limits checked before any object is
 * built: bytes while reading (413), then depth and node count by a linear scan of the raw text (400),
 * and only then JSON.parse. A body of a million tiny nodes costs one pass over its bytes, not a million
 * allocations.
 */
import type { Request } from 'express';
import { AppError } from '../errors.js';

export interface JsonLimits {
  maxBytes: number;
  /** Deepest nesting of objects and arrays. */
  maxDepth: number;
  /** Values (objects, arrays, strings, numbers, literals) in the whole document. */
  maxNodes: number;
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** Reads the whole body up to `maxBytes` (Content-Length checked first). */
export async function readBody(req: Request, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      req.pause();
      throw tooLarge(maxBytes);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(maxBytes: number): AppError {
  return new AppError('payload_too_large', `request body larger than ${maxBytes} bytes`, { expose: true });
}

/**
 * Checks nesting depth and value count of a JSON text without parsing it. Strings are skipped (their
 * content never counts); malformed text is left to JSON.parse, which reports it.
 */
export function checkJsonShape(text: string, limits: Pick<JsonLimits, 'maxDepth' | 'maxNodes'>): string | undefined {
  let depth = 0;
  let nodes = 0;
  let inValue = false; // inside a number or literal (true/false/null)
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      nodes++;
      inValue = false;
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === 0x5c /* \ */) i++;
        else if (s === 0x22) break;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      nodes++;
      inValue = false;
      if (++depth > limits.maxDepth) return `JSON nested deeper than ${limits.maxDepth} levels`;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
      inValue = false;
    } else if (c === 0x2c /* , */ || c === 0x3a /* : */ || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      inValue = false;
    } else if (!inValue) {
      nodes++;
      inValue = true;
    }
    if (nodes > limits.maxNodes) return `JSON has more than ${limits.maxNodes} values`;
  }
  return undefined;
}

/** The request's JSON body, read and checked within `limits` (415 for other media types, 413 past the size, 400 past depth or count). */
export async function readJsonBody(req: Request, limits: JsonLimits): Promise<unknown> {
  if (!JSON_TYPE.test(req.get('content-type') ?? '')) {
    throw new AppError('unsupported_media_type', 'the request body must be application/json', { expose: true });
  }
  const encoding = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity') throw new AppError('unsupported_media_type', `request bodies with Content-Encoding ${encoding} are not accepted`, { expose: true });
  const text = (await readBody(req, limits.maxBytes)).toString('utf8');
  const shape = checkJsonShape(text, limits);
  if (shape) throw new AppError('bad_request', `request body refused: ${shape}`, { expose: true });
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AppError('bad_request', 'request body is not valid JSON', { expose: true });
  }
}
