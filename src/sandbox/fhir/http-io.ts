/** node:http edges of the sandbox FHIR server: body reading, JSON/outcome/raw responses, one write lock. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import '../../platform/websocket-shim.js';
import { badRequest, getStatus, OperationOutcomeError } from '@medplum/core';
import type { OperationOutcome, Resource } from '@medplum/fhirtypes';

export const FHIR_JSON = 'application/fhir+json';
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) {
      throw new OperationOutcomeError({
        resourceType: 'OperationOutcome',
        id: 'content-too-large',
        issue: [{ severity: 'error', code: 'too-costly', details: { text: `Request body exceeds ${limit} bytes` } }],
      });
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export function parseJsonBody(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw new OperationOutcomeError(badRequest('Request body is not valid JSON'));
  }
}

/** The media type of a Content-Type header without parameters, lower-cased ('' when absent). */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
}

export function sendResource(
  res: ServerResponse,
  status: number,
  body: Resource,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': `${FHIR_JSON}; charset=utf-8`,
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Sends an OperationOutcome with the status it implies (or `status` when given). Ids like 'not-found' are kept. */
export function sendOutcome(
  res: ServerResponse,
  outcome: OperationOutcome,
  status = getStatus(outcome),
  headers: Record<string, string> = {},
): void {
  sendResource(res, status, outcome, headers);
}

export function sendRaw(res: ServerResponse, status: number, contentType: string, data: Buffer): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(data.length), 'cache-control': 'no-store' });
  res.end(data);
}

export function outcomeOf(status: 'forbidden' | 'unauthorized' | 'unsupported-media', text: string): OperationOutcome {
  const spec = {
    forbidden: { id: 'forbidden', code: 'forbidden' },
    unauthorized: { id: 'unauthorized', code: 'login' },
    'unsupported-media': { id: 'unsupported-media-type', code: 'not-supported' },
  }[status];
  return {
    resourceType: 'OperationOutcome',
    id: spec.id,
    issue: [{ severity: 'error', code: spec.code as 'forbidden', details: { text } }],
  };
}

/** Serialises write requests so a transaction's snapshot/rollback never interleaves with another write. */
export class WriteLock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
