/**
 * Why the SMART launch does not run on `fhirclient` 2.6.3's Node adapter (docs/architecture.md): measured
 * against the library itself, driven the way a server would drive it (a real HTTP server calling
 * `smart(req, res, storage).authorize()` / `.ready()` / `client.refresh()`, with a storage adapter over a Map,
 * fhirclient's storage port). Each test shows one defect and FAILS once the library no longer has it, which is
 * the signal to revisit the decision:
 *  1. every outbound request leaves through the library's own `cross-fetch` (node-fetch 2), bound when lib.js
 *     loads: neither globalThis.fetch nor a fetch we pass is used, so the guarded fetch (allowlist, address
 *     checks, size and time limits) cannot sit in front of discovery or the code exchange, and the discovery
 *     document is cached for the life of the process outside NODE_ENV=test;
 *  2. the code exchange writes `code` into the form unencoded: a callback's code can add form parameters;
 *  3. `Client.refresh()` sends no client authentication for a `clientPrivateJwk` client (no client_assertion),
 *     so SMART 2.2 confidential-asymmetric refresh is refused by a real authorization server (the sandbox's says
 *     "no client authentication mechanism provided"; signed with the registered key, the same request reaches
 *     the refresh-token check);
 *  4. the default `state` is 16 characters of Math.random() (about 95 bits, not from a CSPRNG; SMART asks for
 *     at least 122 bits), and a replayed callback (same state and code) is answered with the signed-in client.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import smart from 'fhirclient';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createGuardedFetch } from '../../src/net/guarded-fetch.js';
import { authEndpoint } from '../../src/sandbox/auth/smart-configuration.js';
import { startLaunchService, type CapturedService } from './smart-launch-flow.js';

/** fhirclient's storage port (`get`/`set`/`unset`, all async) over a Map: one per browser in a real adapter. */
class MapStorage {
  readonly map = new Map<string, unknown>();
  async get(key: string) {
    return this.map.get(key);
  }
  async set(key: string, value: unknown) {
    this.map.set(key, value);
    return value;
  }
  async unset(key: string) {
    return this.map.delete(key);
  }
}

/** A loopback "EHR" outside any allowlist: discovery, and a token endpoint that records each form. */
let ehr: http.Server;
let ehrOrigin: string;
const seen: { method: string; url: string; form?: URLSearchParams }[] = [];
/** A loopback app server that runs fhirclient's Node adapter for /launch and /callback. */
let app: http.Server;
let appOrigin: string;
const storage = new MapStorage();
let lastResult: { authorizeRedirect?: string; client?: { state: Record<string, unknown> }; error?: string } = {};

beforeAll(async () => {
  ehr = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, ...(req.method === 'POST' ? { form: new URLSearchParams(body) } : {}) });
      const json = (status: number, v: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (req.url!.endsWith('/.well-known/smart-configuration')) {
        return json(200, { authorization_endpoint: `${ehrOrigin}/authorize`, token_endpoint: `${ehrOrigin}/token`, code_challenge_methods_supported: ['S256'] });
      }
      if (req.url === '/token') return json(200, { access_token: 'at-1', token_type: 'Bearer', expires_in: 3600, scope: 'launch online_access', refresh_token: 'rt-1' });
      json(404, {});
    });
  });
  await new Promise<void>((r) => ehr.listen(0, '127.0.0.1', r));
  ehrOrigin = `http://127.0.0.1:${(ehr.address() as AddressInfo).port}`;

  app = http.createServer(async (req, res) => {
    const api = smart(req, res, storage as never);
    try {
      if (req.url!.startsWith('/launch')) {
        lastResult = {};
        const passed = vi.fn();
        // `fetch` is not a fhirclient option; it is passed to show that nothing the caller gives is used to call out.
        lastResult.authorizeRedirect = (await api.authorize({ clientId: 'app-1', scope: 'launch online_access', redirectUri: `${appOrigin}/callback`, noRedirect: true, pkceMode: 'required', fetch: passed } as never)) as unknown as string;
        res.setHeader('x-passed-fetch-calls', String(passed.mock.calls.length));
        res.end('ok');
      } else {
        const client = (await api.ready()) as unknown as { state: Record<string, unknown> };
        lastResult = { client };
        res.end('ready');
      }
    } catch (err) {
      lastResult = { error: (err as Error).message };
      res.end('error');
    }
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appOrigin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => ehr.close(r));
  await new Promise((r) => app.close(r));
});

/** Runs fhirclient's authorize() in the app server (this process) with globalThis.fetch replaced by a counting spy. */
async function authorize(iss: string): Promise<{ redirect: URL; globalCalls: number; passedCalls: number }> {
  const real = globalThis.fetch;
  const spy = vi.fn(real);
  globalThis.fetch = spy as typeof fetch;
  let passedCalls: number;
  try {
    // Our own request to the app server goes through `real`, so the spy counts only what the library does.
    const reply = await real(`${appOrigin}/launch?${new URLSearchParams({ iss, launch: 'L1' })}`);
    passedCalls = Number(reply.headers.get('x-passed-fetch-calls'));
  } finally {
    globalThis.fetch = real;
  }
  expect(lastResult.error).toBeUndefined();
  return { redirect: new URL(lastResult.authorizeRedirect!), globalCalls: spy.mock.calls.length, passedCalls };
}

describe('fhirclient 2.6.3 on the server: measured defects that keep the SMART flow hand-written', () => {
  it('1. discovery leaves through its own cross-fetch, not globalThis.fetch nor a fetch we pass; the guarded fetch would refuse that origin', async () => {
    const guarded = createGuardedFetch({ allow: ['https://ehr.example.org/fhir'], timeoutMs: 1000 });
    const iss = `${ehrOrigin}/fhir-1`;
    expect(guarded.allows(`${iss}/.well-known/smart-configuration`)).toBe(false);
    await expect(guarded(`${iss}/.well-known/smart-configuration`)).rejects.toThrow();

    seen.length = 0;
    const { redirect: to, globalCalls, passedCalls } = await authorize(iss);
    // The request to the non-allowlisted origin was made ...
    expect(seen.map((r) => r.url)).toEqual(['/fhir-1/.well-known/smart-configuration']);
    // ... by neither globalThis.fetch nor the fetch we passed.
    expect(globalCalls).toBe(0);
    expect(passedCalls).toBe(0);
    expect(to.origin + to.pathname).toBe(`${ehrOrigin}/authorize`);
    expect(to.searchParams.get('aud')).toBe(iss);
    expect(to.searchParams.get('code_challenge_method')).toBe('S256');
  });

  it('1b. outside NODE_ENV=test the discovery document is cached for the life of the process (a changed token endpoint is never re-read)', async () => {
    const iss = `${ehrOrigin}/fhir-cache`;
    const env = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      seen.length = 0;
      await authorize(iss);
      await authorize(iss);
    } finally {
      process.env.NODE_ENV = env;
    }
    expect(seen.filter((r) => r.url === '/fhir-cache/.well-known/smart-configuration')).toHaveLength(1);
  });

  it('2. the code exchange leaves unguarded and writes `code` unencoded: a callback code adds its own redirect_uri', async () => {
    const { redirect } = await authorize(`${ehrOrigin}/fhir-2`);
    const state = redirect.searchParams.get('state')!;
    seen.length = 0;
    const real = globalThis.fetch;
    const spy = vi.fn(real);
    globalThis.fetch = spy as typeof fetch;
    try {
      await real(`${appOrigin}/callback?${new URLSearchParams({ state, code: 'abc&redirect_uri=https://attacker.example/cb' })}`);
    } finally {
      globalThis.fetch = real;
    }
    expect(lastResult.error).toBeUndefined();
    const token = seen.find((r) => r.url === '/token')!;
    expect(token).toBeDefined();
    expect(spy).not.toHaveBeenCalled(); // the token POST did not use globalThis.fetch either
    expect(token.form!.get('code')).toBe('abc');
    expect(token.form!.getAll('redirect_uri')).toEqual(['https://attacker.example/cb', `${appOrigin}/callback`]);
  });

  it('4. state is 16 Math.random() characters (~95 bits); a replayed callback returns the signed-in client without a new exchange', async () => {
    const states: string[] = [];
    for (let i = 0; i < 3; i++) states.push((await authorize(`${ehrOrigin}/fhir-4`)).redirect.searchParams.get('state')!);
    for (const s of states) expect(s).toMatch(/^[A-Za-z0-9]{16}$/);
    expect(16 * Math.log2(62)).toBeLessThan(122);

    const state = states.at(-1)!;
    seen.length = 0;
    await fetch(`${appOrigin}/callback?${new URLSearchParams({ state, code: 'c1' })}`);
    expect((lastResult.client?.state.tokenResponse as { access_token?: string })?.access_token).toBe('at-1');
    await fetch(`${appOrigin}/callback?${new URLSearchParams({ state, code: 'c1' })}`);
    expect(lastResult.error).toBeUndefined();
    expect((lastResult.client?.state.tokenResponse as { access_token?: string })?.access_token).toBe('at-1');
    expect(seen.filter((r) => r.url === '/token')).toHaveLength(1);
  });
});

describe('fhirclient 2.6.3 refresh for a confidential-asymmetric client, against the real authorization server', () => {
  let s: CapturedService;
  let clientPrivateJwk: Record<string, unknown>;
  beforeAll(async () => {
    // The key the authorization server has registered for the app: a library that signed its refresh would pass.
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    clientPrivateJwk = { ...(await exportJWK(privateKey)), alg: 'ES384', kid: 'smart-k1' };
    const file = join(mkdtempSync(join(tmpdir(), 'volmo-fhirclient-key-')), 'smart.jwk.json');
    writeFileSync(file, JSON.stringify(clientPrivateJwk), { mode: 0o600 });
    s = await startLaunchService({ VOLMO_SMART_CLIENT_AUTH: 'private_key_jwt', VOLMO_SMART_CLIENT_KEY_FILE: file });
  }, 60_000);
  afterAll(async () => s?.svc.close());

  it('3. Client.refresh() sends no client_assertion: the sandbox authorization server answers "no client authentication", not the invalid_grant a signed request with this unknown refresh token gets', async () => {
    const tokenUri = authEndpoint(s.svc.sandbox!.authIssuer, 'token');
    // The app's state as fhirclient keeps it after an asymmetric sign-in.
    const state = { serverUrl: s.svc.sandbox!.fhirBaseUrl, clientId: 'volmo-smart-app', tokenUri, clientPrivateJwk, tokenResponse: { access_token: 'x', refresh_token: 'not-a-real-refresh-token', scope: 'launch online_access' } };
    const recorded: URLSearchParams[] = [];
    const recorder = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        recorded.push(new URLSearchParams(body));
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}');
      });
    });
    await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
    const host = http.createServer(async (req, res) => {
      const api = smart(req, res, new MapStorage() as never);
      const target = new URL(req.url!, 'http://x').searchParams.get('token')!;
      try {
        await api.client({ ...structuredClone(state), tokenUri: target } as never).refresh();
        res.end('refreshed');
      } catch (err) {
        const e = err as { status?: number; message: string };
        res.end(JSON.stringify({ status: e.status, message: e.message }));
      }
    });
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
    const hostUrl = `http://127.0.0.1:${(host.address() as AddressInfo).port}/`;
    try {
      // What it sends: the refresh token, and no client authentication at all.
      await fetch(`${hostUrl}?token=${encodeURIComponent(`http://127.0.0.1:${(recorder.address() as AddressInfo).port}/token`)}`);
      expect([...recorded[0]!.keys()].sort()).toEqual(['grant_type', 'refresh_token']);
      // What a real authorization server makes of it: the client is not authenticated.
      const answer = JSON.parse(await (await fetch(`${hostUrl}?token=${encodeURIComponent(tokenUri)}`)).text()) as { status: number; message: string };
      expect(answer.status, JSON.stringify(answer)).toBe(400);
      expect(answer.message).toMatch(/no client authentication mechanism provided/);
      expect(answer.message).not.toMatch(/invalid_grant/);
    } finally {
      await new Promise((r) => host.close(r));
      await new Promise((r) => recorder.close(r));
    }
  });
});
