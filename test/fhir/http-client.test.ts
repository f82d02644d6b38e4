import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createGuardedFetch, type GuardedFetch } from '../../src/net/guarded-fetch.js';
import { HttpFhirClient } from '../../src/fhir/http-client.js';
import { FhirError } from '../../src/fhir/fhir-error.js';
import { parseRelativeQuery } from '../../src/fhir/client.js';
import { anonymousTokenSource, fhirAuthorizationTokenSource, type TokenSource } from '../../src/fhir/token-source.js';
import { NetError } from '../../src/net/net-error.js';
import { refusedHosts } from '../helpers/loopback-guard.js';
import { json, startScriptedServer, type ScriptedServer } from '../net/helpers/scripted-server.js';

const TOKEN = 'eyJhbGciOiJSUzM4NCJ9.eyJzdWIiOiJ0ZXN0LWNsaWVudCJ9.c2lnbmF0dXJlLXNlY3JldA';
const logLines: string[] = [];
const logger = createLogger({ level: 'debug', destination: new Writable({ write(c, _e, cb) { logLines.push(String(c)); cb(); } }) });

let srv: ScriptedServer;
let gf: GuardedFetch;
let fhir: HttpFhirClient;
const tokens: TokenSource = fhirAuthorizationTokenSource({ access_token: TOKEN, token_type: 'Bearer', expires_in: 300, scope: 'patient/*.read', subject: 'volmo' });

async function failure(p: Promise<unknown>): Promise<NetError> {
  try { await p; } catch (err) { expect(err).toBeInstanceOf(NetError); return err as NetError; }
  throw new Error('expected an error');
}

const page = (ids: string[], next?: string) => ({
  resourceType: 'Bundle', type: 'searchset',
  link: next ? [{ relation: 'next', url: next }] : [],
  entry: ids.map((id) => ({ resource: { resourceType: 'Observation', id }, search: { mode: 'match' } })),
});

beforeAll(async () => {
  srv = await startScriptedServer();
  gf = createGuardedFetch({ allow: [`${srv.origin}/fhir`, `${srv.origin}/docs`], timeoutMs: 400, logger, retry: { baseDelayMs: 5, maxDelayMs: 10 } });
  fhir = new HttpFhirClient({ baseUrl: `${srv.origin}/fhir/`, fetch: gf, tokens, logger });
  srv.route('/fhir/Patient/p1', (q, r) => json(r, 200, { resourceType: 'Patient', id: 'p1', auth: q.headers.authorization, accept: q.headers.accept }));
  srv.route('/fhir/Patient/gone', (_q, r) => json(r, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found', diagnostics: 'Patient/gone not found' }] }));
  srv.route('/fhir/Patient/boom', (_q, r) => json(r, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception' }] }));
  srv.route('/fhir/Patient/html', (_q, r) => r.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><body>Login</body></html>'));
  srv.route('/fhir/Patient/html-as-json', (_q, r) => r.writeHead(200, { 'content-type': 'application/json' }).end('<html><body>proxy error</body></html>'));
  srv.route('/fhir/Patient/half', (_q, r) => r.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"Patient","id":"ha'));
  srv.route('/fhir/Patient/cut', (_q, r) => { r.writeHead(200, { 'content-length': '500' }); r.write('{"resourceType":"Patient"'); setTimeout(() => r.socket?.destroy(), 10); });
  srv.route('/fhir/Patient/wrong', (_q, r) => json(r, 200, { resourceType: 'Bundle' }));
  srv.route('/fhir/Patient/hang', () => {});
  srv.route('/fhir/Patient/big', (_q, r) => { r.writeHead(200, { 'content-type': 'application/fhir+json' }); r.end(`{"resourceType":"Patient","x":"${'a'.repeat(3 * 1024 * 1024)}"}`); });
  srv.route('/fhir/Patient/to-metadata', (_q, r) => r.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/iam' }).end());
  srv.route('/fhir/Patient/unauth', (_q, r) => json(r, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] }));
  srv.route('/fhir/Observation', (q, r) => {
    const u = new URL(q.url!, srv.origin);
    const p = u.searchParams.get('page') ?? '1';
    if (u.searchParams.get('code') === 'escape') return json(r, 200, page(['e1'], 'http://127.0.0.1:1/steal'));
    if (u.searchParams.get('code') === 'oo') return json(r, 200, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'processing' }] });
    if (u.searchParams.get('code') === 'empty') return json(r, 200, { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', details: { text: '4101 no results' } }] }, search: { mode: 'outcome' } }] });
    if (p === '1') return json(r, 200, page(['o1', 'o2'], `${srv.origin}/fhir/Observation?page=2&patient=p1`));
    if (p === '2') return json(r, 200, page(['o3', 'o4'], `${srv.origin}/fhir/Observation?page=3&patient=p1`));
    return json(r, 200, page(['o5']));
  });
  srv.route('/fhir/Binary/b1', (q, r) => (q.headers.accept?.startsWith('application/fhir+json')
    ? json(r, 200, { resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from('hello note').toString('base64') })
    : r.end('raw')));
  srv.route('/fhir/Binary/raw', (_q, r) => r.writeHead(200, { 'content-type': 'image/jpeg' }).end(Buffer.from([0xff, 0xd8, 0xff, 0xd9])));
  srv.route('/docs/d1', (q, r) => r.writeHead(200, { 'content-type': 'text/plain', 'x-auth': String(q.headers.authorization ?? 'none') }).end(`auth=${q.headers.authorization ?? 'none'}`));
});
afterAll(async () => { gf.close(); await srv.close(); });

describe('HttpFhirClient', () => {
  it('reads with bearer token and FHIR Accept', async () => {
    const p = await fhir.read<{ resourceType: 'Patient'; id: string; auth?: string; accept?: string } & never>('Patient', 'p1');
    expect(p).toMatchObject({ id: 'p1', auth: `Bearer ${TOKEN}`, accept: 'application/fhir+json' });
  });

  it('pages via link[next] and respects the page cap', async () => {
    const all = await fhir.search('Observation', { patient: 'p1' });
    expect(all.resources.map((r) => r.id)).toEqual(['o1', 'o2', 'o3', 'o4', 'o5']);
    expect([all.pages, all.truncated]).toEqual([3, false]);
    const capped = await fhir.search('Observation', { patient: 'p1' }, { maxPages: 2 });
    expect(capped.resources.map((r) => r.id)).toEqual(['o1', 'o2', 'o3', 'o4']);
    expect(capped.truncated).toBe(true);
    const few = await fhir.search('Observation', { patient: 'p1' }, { maxResources: 3 });
    expect([few.resources.length, few.truncated]).toEqual([3, true]);
  });

  it('continues a search from a next link on the same server only', async () => {
    const rest = await fhir.continueSearch(`${srv.origin}/fhir/Observation?page=2&patient=p1`);
    expect(rest.resources.map((r) => r.id)).toEqual(['o3', 'o4', 'o5']);
    await expect(fhir.continueSearch('http://127.0.0.1:1/fhir/Observation?page=2')).rejects.toMatchObject({ reason: 'refused_allowlist' });
  });

  it('separates OperationOutcome entries from results (Epic "no results" style)', async () => {
    const res = await fhir.search('Observation', { code: 'empty' });
    expect(res.resources).toEqual([]);
    expect(res.outcomes).toHaveLength(1);
  });

  it('passes over entries and links of the wrong shape in a searchset (issue 14: was a TypeError)', async () => {
    srv.route('/fhir/Media', (_q, r) => json(r, 200, { resourceType: 'Bundle', type: 'searchset', link: { relation: 'next' }, entry: [null, 5, { resource: null }, { resource: 'x' }, { resource: { resourceType: 'Media', id: 'm' } }] }));
    srv.route('/fhir/Endpoint', (_q, r) => json(r, 200, { resourceType: 'Bundle', type: 'searchset', link: [null, { relation: 'next', url: 7 }], entry: { resource: { resourceType: 'Endpoint' } } }));
    expect((await fhir.search('Media')).resources).toEqual([{ resourceType: 'Media', id: 'm' }]);
    expect(await fhir.search('Endpoint')).toMatchObject({ resources: [], truncated: false, pages: 1 });
  });

  it('refuses a next link that leaves the server, without sending the token', async () => {
    const before = refusedHosts.length;
    const err = await failure(fhir.search('Observation', { code: 'escape' }));
    expect([err.reason, err.code]).toEqual(['refused_allowlist', 'upstream_refused']);
    expect(refusedHosts.length).toBe(before);
  });

  it.each([
    ['gone', 'http_status', 'not_found'],
    ['boom', 'http_status', 'upstream_error'],
    ['html', 'bad_body', 'upstream_error'],
    ['html-as-json', 'bad_body', 'upstream_error'],
    ['half', 'bad_body', 'upstream_error'],
    ['cut', 'bad_body', 'upstream_error'],
    ['wrong', 'bad_body', 'upstream_error'],
    ['hang', 'timeout', 'upstream_timeout'],
    ['to-metadata', 'refused_allowlist', 'upstream_refused'],
    ['unauth', 'http_status', 'upstream_error'],
  ])('Patient/%s ends in %s / %s', async (id, reason, code) => {
    const err = await failure(fhir.read('Patient', id));
    expect([err.reason, err.code]).toEqual([reason, code]);
    expect(err.message).not.toContain(TOKEN);
    expect(err.message).not.toContain('Patient/');
  });

  it('keeps OperationOutcome issue codes but not diagnostics', async () => {
    const err = (await failure(fhir.read('Patient', 'gone'))) as FhirError;
    expect(err.issues).toEqual([{ severity: 'error', code: 'not-found' }]);
    expect(err.upstreamStatus).toBe(404);
  });

  it('treats a search answered with an OperationOutcome as an error', async () => {
    const err = await failure(fhir.search('Observation', { code: 'oo' }));
    expect(err.code).toBe('upstream_error');
  });

  it('limits JSON size', async () => {
    const small = new HttpFhirClient({ baseUrl: `${srv.origin}/fhir`, fetch: gf, tokens, maxJsonBytes: 1024 * 1024 });
    expect((await failure(small.read('Patient', 'big'))).reason).toBe('too_large');
  });

  it('validates type and id before any request', async () => {
    const n = srv.seen.length;
    await expect(fhir.read('Patient', '../../admin')).rejects.toMatchObject({ code: 'bad_request' });
    await expect(fhir.search('patient?x=1')).rejects.toMatchObject({ code: 'bad_request' });
    expect(srv.seen.length).toBe(n);
  });

  it('reads Binary as a FHIR resource or as raw bytes', async () => {
    const b = await fhir.readBinary('Binary/b1');
    expect([b.contentType, Buffer.from(b.data).toString()]).toEqual(['text/plain', 'hello note']);
    const raw = await fhir.readBinary(`${srv.origin}/fhir/Binary/raw`);
    expect([raw.contentType, raw.data.length]).toEqual(['image/jpeg', 4]);
    await expect(fhir.readBinary('http://127.0.0.1:1/fhir/Binary/x')).rejects.toMatchObject({ code: 'upstream_refused' });
  });

  it('reads attachments: inline, FHIR-relative, other origin without the token', async () => {
    const inline = await fhir.readAttachment({ contentType: 'text/plain', data: Buffer.from('abc').toString('base64') });
    expect(Buffer.from(inline.data).toString()).toBe('abc');
    const rel = await fhir.readAttachment({ contentType: 'text/plain', url: 'Binary/b1' });
    expect(Buffer.from(rel.data).toString()).toBe('hello note');
    const other = await fhir.readAttachment({ contentType: 'text/plain', url: `${srv.origin}/docs/d1` });
    expect(Buffer.from(other.data).toString()).toBe('auth=none');
    await expect(fhir.readAttachment({ contentType: 'text/plain', data: '%%%' })).rejects.toMatchObject({ reason: 'bad_body' });
    await expect(fhir.readAttachment({ contentType: 'text/plain', size: 10_000, url: 'Binary/b1' }, { maxBytes: 100 })).rejects.toMatchObject({ reason: 'too_large' });
    await expect(fhir.readAttachment({ contentType: 'text/plain' })).rejects.toMatchObject({ code: 'not_found' });
  });

  it('works against an open server without Authorization', async () => {
    const open = new HttpFhirClient({ baseUrl: `${srv.origin}/fhir`, fetch: gf, tokens: anonymousTokenSource });
    const p = (await open.read('Patient', 'p1')) as unknown as { auth?: string };
    expect(p.auth).toBeUndefined();
  });

  it('parses relative prefetch-style queries', () => {
    expect(parseRelativeQuery('Observation?patient=1&code=a,b&code=c')).toEqual({ resourceType: 'Observation', params: { patient: ['1'], code: ['a,b', 'c'] } });
    expect(parseRelativeQuery('/Patient/1')).toEqual({ resourceType: 'Patient/1', params: {} });
  });

  it('never logged the token', () => {
    expect(logLines.length).toBeGreaterThan(0);
    const all = logLines.join('\n');
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain('c2lnbmF0dXJlLXNlY3JldA');
  });
});
