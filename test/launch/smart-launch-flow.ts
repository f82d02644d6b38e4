/** Shared by the SMART launch tests: the service + sandbox with captured logs, fixture patient ids, a cookie-jar client. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import { createLaunchRouter, type AppSession, type PendingLaunch } from '../../launch/launch-router.js';
import type { BrowserRecord } from '../../launch/session-cookie.js';
import type { SmartClientAuth } from '../../launch/smart-oauth.js';
import { MemoryKeyedStore } from '../../launch/ttl-store.js';
import { createGuardedFetch } from '../../src/net/guarded-fetch.js';
import { createLogger } from '../../src/log.js';
import type { SandboxedService } from '../../src/sandbox/service.js';
import { startSandboxedService } from '../helpers/service.js';
import { ehrToken, fixturePatientId as lookupFixturePatient, type EhrToken } from '../../src/sandbox/ehr-access.js';

export interface CapturedService {
  svc: SandboxedService;
  logs: string[];
}

/** No model and no PACS: the launch path needs neither, and the tests stay fast. */
export async function startLaunchService(env: Record<string, string> = {}): Promise<CapturedService> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const svc = await startSandboxedService({ VOLMO_SANDBOX_PACS: 'none', VOLMO_SANDBOX_MODEL: 'none', ...env }, createLogger({ level: 'debug', destination: sink }));
  return { svc, logs };
}

/** A token the EHR simulator obtains for itself (client_credentials), as it hands to hook calls. */
export function ehrBackendToken(svc: SandboxedService, scope = 'system/Patient.rs'): Promise<EhrToken> {
  return ehrToken(svc.sandbox!.fhirBaseUrl, svc.sandbox!.ehr, scope.split(' '));
}

/** The FHIR id of a fixture patient (read with the EHR simulator's backend token). */
export async function fixturePatientId(svc: SandboxedService, mrn: string): Promise<string> {
  return lookupFixturePatient(svc.sandbox!.fhirBaseUrl, (await ehrBackendToken(svc)).access_token, mrn);
}

export interface Hop {
  url: string;
  status: number;
  location?: string;
  body: string;
  setCookies: string[];
}

/** A browser stand-in: follows redirects by hand and keeps cookies per origin (paths ignored). */
export class CookieJarClient {
  private readonly jar = new Map<string, Map<string, string>>();
  readonly hops: Hop[] = [];

  async get(url: string): Promise<Hop> {
    const origin = new URL(url).origin;
    const cookies = [...(this.jar.get(origin) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers: cookies ? { cookie: cookies } : {} });
    const setCookies = res.headers.getSetCookie();
    for (const c of setCookies) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const m = this.jar.get(origin) ?? new Map<string, string>();
      m.set(pair!.slice(0, i).trim(), pair!.slice(i + 1).trim());
      this.jar.set(origin, m);
    }
    const location = res.headers.get('location') ?? undefined;
    const hop: Hop = { url, status: res.status, ...(location ? { location: new URL(location, url).href } : {}), body: await res.text(), setCookies };
    this.hops.push(hop);
    return hop;
  }

  /** GETs `url` and follows redirects until a non-redirect answer (at most `max` hops). */
  async follow(url: string, max = 15): Promise<Hop> {
    let hop = await this.get(url);
    for (let i = 0; hop.location && hop.status >= 300 && hop.status < 400; i++) {
      if (i >= max) throw new Error('too many redirects');
      hop = await this.get(hop.location);
    }
    return hop;
  }
}

/** A launch router run in the test process: its own clock, stores and client authentication. */
export interface SideRouter {
  origin: string;
  clock: { t: number };
  logs: string[];
  close(): Promise<void>;
}

export interface SideStores {
  pending: MemoryKeyedStore<PendingLaunch>;
  sessions: MemoryKeyedStore<AppSession>;
  browsers: MemoryKeyedStore<BrowserRecord>;
}

export function sideStores(): SideStores {
  return { pending: new MemoryKeyedStore<PendingLaunch>({ maxEntries: 100 }), sessions: new MemoryKeyedStore<AppSession>({ maxEntries: 100 }), browsers: new MemoryKeyedStore<BrowserRecord>({ maxEntries: 100 }) };
}

/**
 * A second launch router for the sandboxed service's EHR: the service's client id and redirect URI (the ones the
 * sandbox authorization server has registered), with the given client authentication, stores and a movable clock.
 */
export async function startSideRouter(svc: SandboxedService, auth: SmartClientAuth, stores?: SideStores): Promise<SideRouter> {
  const sb = svc.sandbox!;
  const clock = { t: Date.now() };
  const logs: string[] = [];
  const log = createLogger({ level: 'info', destination: new Writable({ write: (chunk: Buffer, _enc, cb) => (logs.push(chunk.toString('utf8')), cb()) }) });
  const ex = express();
  ex.use(
    createLaunchRouter({
      publicUrl: svc.url,
      clientId: 'volmo-smart-app',
      clientAuth: auth,
      scopes: 'launch openid fhirUser online_access patient/Patient.rs',
      fetch: createGuardedFetch({ allow: [sb.fhirBaseUrl, ...sb.outboundAllowlist], timeoutMs: 5000, retry: { maxRetries: 0 } }),
      isFhirServerAllowed: (u) => u === sb.fhirBaseUrl,
      analyses: { recentForSubject: async () => [] },
      log,
      sessionMaxMs: 8 * 3600_000,
      now: () => clock.t,
      ...(stores ?? {}),
    }),
  );
  const server = http.createServer(ex);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, clock, logs, close: () => new Promise((r) => server.close(() => r())) };
}

/**
 * Starts an EHR launch for `patientId` at `side`, lets the sandbox authorization server sign in, and hands its
 * redirect to the service's callback URL over to `side` instead. Returns the authorization server's callback URL too.
 */
export async function launchVia(svc: SandboxedService, side: SideRouter, patientId: string, browser = new CookieJarClient()): Promise<{ browser: CookieJarClient; callback: Hop; callbackUrl: URL }> {
  const sb = svc.sandbox!;
  let hop = await browser.get(`${side.origin}/launch?${new URLSearchParams({ iss: sb.fhirBaseUrl, launch: sb.auth.createLaunch({ patient: patientId }) })}`);
  if (hop.status !== 302) throw new Error(`launch answered ${hop.status}`);
  while (hop.location && !hop.location.startsWith(`${svc.url}/launch/callback`)) hop = await browser.get(hop.location);
  if (!hop.location?.includes('code=')) throw new Error('the authorization server returned no code');
  const callbackUrl = new URL(hop.location);
  return { browser, callbackUrl, callback: await browser.get(`${side.origin}${callbackUrl.pathname}${callbackUrl.search}`) };
}
