import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createGuardedFetch, type GuardedFetch, type NetPolicy } from '../../src/net/guarded-fetch.js';
import { NetError } from '../../src/net/net-error.js';
import { refusedHosts } from '../helpers/loopback-guard.js';
import { json, startScriptedServer, type ScriptedServer } from './helpers/scripted-server.js';

let srv: ScriptedServer;
let other: ScriptedServer;
const logLines: string[] = [];
const logger = createLogger({
  level: 'debug',
  destination: new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } }),
});
const TOKEN = 'sEcReT-access-token-0123456789';

async function failure(p: Promise<unknown>): Promise<NetError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(NetError);
    return err as NetError;
  }
  throw new Error('expected a NetError');
}

function make(extra: Partial<NetPolicy> = {}): GuardedFetch {
  return createGuardedFetch({
    allow: [srv.origin, other.origin, { prefix: `http://fhir.test:${srv.port}/fhir`, allowPrivateNetwork: true }, `http://public.test:${srv.port}`],
    timeoutMs: 500,
    retry: { baseDelayMs: 10, maxDelayMs: 40, maxRetries: 2, maxRetryAfterMs: 2000 },
    random: () => 0,
    logger,
    resolve: async (host) => {
      if (host === 'fhir.test' || host === 'public.test') return [{ address: '127.0.0.1', family: 4 }];
      if (host === 'rebind.test') return [{ address: '127.0.0.1', family: 4 }, { address: '10.0.0.1', family: 4 }];
      throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
    },
    ...extra,
  });
}

let gf: GuardedFetch;
beforeAll(async () => {
  srv = await startScriptedServer();
  other = await startScriptedServer();
  gf = make();
  srv.route('/ok', (_q, r) => json(r, 200, { resourceType: 'Patient', id: 'p1' }));
  srv.route('/fhir/ok', (_q, r) => json(r, 200, { ok: true }));
  srv.route('/hang', () => {});
  srv.route('/slow-body', (_q, r) => { r.writeHead(200, { 'content-type': 'application/json' }); r.write('{"a":'); });
  srv.route('/500', (_q, r) => json(r, 500, { resourceType: 'OperationOutcome', issue: [] }));
  srv.route('/to-metadata', (_q, r) => r.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end());
  srv.route('/to-private', (_q, r) => r.writeHead(307, { location: 'http://10.0.0.1/admin' }).end());
  srv.route('/to-mapped', (_q, r) => r.writeHead(302, { location: 'http://[::ffff:169.254.169.254]/' }).end());
  srv.route('/to-file', (_q, r) => r.writeHead(302, { location: 'file:///etc/passwd' }).end());
  srv.route('/to-self', (_q, r) => r.writeHead(302, { location: '/ok' }).end());
  srv.route('/to-other', (_q, r) => r.writeHead(302, { location: `${other.origin}/echo` }).end());
  srv.route('/loop', (_q, r) => r.writeHead(302, { location: '/loop' }).end());
  srv.route('/no-location', (_q, r) => r.writeHead(302).end());
  srv.route('/post-303', (_q, r) => r.writeHead(303, { location: '/ok' }).end());
  other.route('/echo', (q, r) => json(r, 200, { auth: q.headers.authorization ?? null }));
  srv.route('/declared-huge', (_q, r) => { r.writeHead(200, { 'content-length': String(50 * 1024 * 1024) }); r.write('x'); });
  srv.route('/streamed-huge', (_q, r) => {
    r.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < 50) {
        sent++;
        if (!r.write(chunk)) return void r.once('drain', pump);
      }
      r.end();
    };
    r.on('error', () => {});
    pump();
  });
  srv.route('/truncated', (_q, r) => { r.writeHead(200, { 'content-length': '1000' }); r.write('{"resourceType":"Bun'); setTimeout(() => r.socket?.destroy(), 20); });
});
afterAll(async () => {
  gf.close();
  await srv.close();
  await other.close();
});

describe('guarded fetch: allowed traffic', () => {
  it('GETs from an allowlisted loopback origin', async () => {
    const res = await gf(`${srv.origin}/ok`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text())).toEqual({ resourceType: 'Patient', id: 'p1' });
  });

  it('pins the connection to the checked address and keeps the Host name', async () => {
    const before = srv.hits('/fhir/ok');
    const res = await gf(`http://fhir.test:${srv.port}/fhir/ok`);
    expect(res.ok).toBe(true);
    expect(srv.hits('/fhir/ok')).toBe(before + 1);
    expect(srv.seen.at(-1)!.headers.host).toBe(`fhir.test:${srv.port}`);
  });

  it('follows a same-origin redirect; strips Authorization on a cross-origin one', async () => {
    expect((await gf(`${srv.origin}/to-self`)).url).toBe(`${srv.origin}/ok`);
    const res = await gf(`${srv.origin}/to-other`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(JSON.parse(res.text())).toEqual({ auth: null });
  });

  it('turns POST into GET on 303', async () => {
    const res = await gf(`${srv.origin}/post-303`, { method: 'POST', body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(200);
    expect(srv.seen.at(-1)!.method).toBe('GET');
  });
});

describe('guarded fetch: refusals happen before any connection', () => {
  it.each([
    ['non-http scheme', 'ftp://127.0.0.1/x', 'refused_scheme'],
    ['file scheme', 'file:///etc/passwd', 'refused_scheme'],
    ['credentials in URL', 'http://user:pw@127.0.0.1/x', 'refused_scheme'],
    ['unlisted port', 'http://127.0.0.1:1/x', 'refused_allowlist'],
    ['metadata address', 'http://169.254.169.254/latest/meta-data/', 'refused_allowlist'],
    ['private address', 'http://10.0.0.1/', 'refused_allowlist'],
    ['unlisted path on a listed host', 'http://fhir.test:PORT/admin', 'refused_allowlist'],
  ])('%s', async (_name, url, reason) => {
    const refusedBefore = refusedHosts.length;
    const hitsBefore = srv.seen.length;
    const err = await failure(gf(url.replace('PORT', String(srv.port))));
    expect(err.reason).toBe(reason);
    expect(err.code).toBe('upstream_refused');
    expect(srv.seen.length).toBe(hitsBefore);
    expect(refusedHosts.length).toBe(refusedBefore); // our guard refused, not the test's network guard
  });

  it('refuses a public-only host that resolves to loopback (DNS rebinding to internal)', async () => {
    const err = await failure(gf(`http://public.test:${srv.port}/ok`));
    expect(err.reason).toBe('refused_address');
    expect(err.message).toContain('loopback');
  });

  it('refuses when any resolved address is disallowed', async () => {
    const g = createGuardedFetch({
      allow: [{ prefix: 'http://rebind.test', allowPrivateNetwork: false }],
      resolve: async () => [{ address: '8.8.8.8', family: 4 }, { address: '169.254.169.254', family: 4 }],
    });
    const before = refusedHosts.length;
    const err = await failure(g('http://rebind.test/x'));
    expect(err.reason).toBe('refused_address');
    expect(err.message).toContain('metadata');
    expect(refusedHosts.length).toBe(before);
    g.close();
  });

  it('reports DNS failure as upstream_error', async () => {
    const g = createGuardedFetch({ allow: ['http://nowhere.test'], resolve: async () => { throw Object.assign(new Error('x'), { code: 'ENOTFOUND' }); } });
    const err = await failure(g('http://nowhere.test/'));
    expect([err.reason, err.code]).toEqual(['dns_failed', 'upstream_error']);
  });

  it.each([
    ['/to-metadata', 'refused_allowlist'],
    ['/to-private', 'refused_allowlist'],
    ['/to-mapped', 'refused_allowlist'],
    ['/to-file', 'refused_scheme'],
  ])('refuses redirect %s', async (path, reason) => {
    const before = refusedHosts.length;
    const err = await failure(gf(`${srv.origin}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } }));
    expect(err.reason).toBe(reason);
    expect(refusedHosts.length).toBe(before);
  });

  it('refuses a redirect to an allowlisted name that resolves to a forbidden address', async () => {
    const g = createGuardedFetch({
      allow: [srv.origin, 'http://evil.test'],
      resolve: async () => [{ address: '10.0.0.1', family: 4 }],
    });
    srv.route('/to-evil', (_q, r) => r.writeHead(302, { location: 'http://evil.test/x' }).end());
    const before = refusedHosts.length;
    const err = await failure(g(`${srv.origin}/to-evil`));
    expect(err.reason).toBe('refused_address');
    expect(refusedHosts.length).toBe(before);
    g.close();
  });

  it('stops redirect loops after 3 hops', async () => {
    const before = srv.hits('/loop');
    const err = await failure(gf(`${srv.origin}/loop`));
    expect(err.reason).toBe('too_many_redirects');
    expect(srv.hits('/loop') - before).toBe(4);
  });

  it('rejects a redirect without Location', async () => {
    expect((await failure(gf(`${srv.origin}/no-location`))).reason).toBe('bad_redirect');
  });

  it('check() refuses without connecting', async () => {
    await expect(gf.check('http://10.0.0.1/')).rejects.toBeInstanceOf(NetError);
    await expect(gf.check(`${srv.origin}/anything`)).resolves.toBeUndefined();
  });
});

describe('guarded fetch: misbehaving upstream', () => {
  it('times out a server that never answers', async () => {
    const t0 = Date.now();
    const err = await failure(gf(`${srv.origin}/hang`));
    expect([err.reason, err.code]).toEqual(['timeout', 'upstream_timeout']);
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('times out a body that never finishes', async () => {
    const err = await failure(gf(`${srv.origin}/slow-body`));
    expect(err.reason).toBe('timeout');
  });

  it('distinguishes the caller aborting', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    const err = await failure(gf(`${srv.origin}/hang`, { signal: ctl.signal, timeoutMs: 5000 }));
    expect(err.reason).toBe('aborted');
  });

  it('returns a 500 as a response (callers map it)', async () => {
    const res = await gf(`${srv.origin}/500`);
    expect(res.status).toBe(500);
    expect(res.ok).toBe(false);
  });

  it('refuses a declared 50 MB body without reading it', async () => {
    const err = await failure(gf(`${srv.origin}/declared-huge`, { maxBytes: 1024 * 1024 }));
    expect(err.reason).toBe('too_large');
  });

  it('stops reading a streamed 50 MB body at the limit', async () => {
    const t0 = Date.now();
    const err = await failure(gf(`${srv.origin}/streamed-huge`, { maxBytes: 2 * 1024 * 1024, timeoutMs: 5000 }));
    expect(err.reason).toBe('too_large');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('reports a truncated body', async () => {
    const err = await failure(gf(`${srv.origin}/truncated`));
    expect([err.reason, err.code]).toEqual(['bad_body', 'upstream_error']);
  });

  it('retries 429 honouring Retry-After, then succeeds', async () => {
    let n = 0;
    srv.route('/rate', (_q, r) => (n++ === 0 ? json(r, 429, {}, { 'retry-after': '1' }) : json(r, 200, { n })));
    const t0 = Date.now();
    const res = await gf(`${srv.origin}/rate`);
    expect(res.status).toBe(200);
    expect(n).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990);
  });

  it('does not wait for a Retry-After beyond the cap', async () => {
    srv.route('/rate-long', (_q, r) => json(r, 429, {}, { 'retry-after': '120' }));
    const t0 = Date.now();
    const res = await gf(`${srv.origin}/rate-long`);
    expect(res.status).toBe(429);
    expect(srv.hits('/rate-long')).toBe(1);
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('retries 503 a bounded number of times with backoff', async () => {
    srv.route('/unavailable', (_q, r) => json(r, 503, {}));
    const res = await gf(`${srv.origin}/unavailable`);
    expect(res.status).toBe(503);
    expect(srv.hits('/unavailable')).toBe(3);
  });

  it('reports connection refused as a network error', async () => {
    const dead = await startScriptedServer();
    const port = dead.port;
    await dead.close();
    const g = createGuardedFetch({ allow: [`http://127.0.0.1:${port}`] });
    const err = await failure(g(`http://127.0.0.1:${port}/x`));
    expect([err.reason, err.code]).toEqual(['network', 'upstream_error']);
    g.close();
  });

  it('never logs the token, whatever happened', () => {
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('\n')).not.toContain(TOKEN);
  });
});
