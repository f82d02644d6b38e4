/** Shared by the SMART launch tests: the service + sandbox with captured logs, fixture patient ids, a cookie-jar client. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startService, type RunningService } from '../../src/main.js';
import { FIXTURE_MRN_SYSTEM } from '../../src/sandbox/fixtures.js';
import { SANDBOX_CLIENT_IDS } from '../../src/sandbox/index.js';

export interface CapturedService {
  svc: RunningService;
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
  const config = loadConfig({
    VOLMO_PORT: '0',
    VOLMO_SANDBOX_FHIR_PORT: '0',
    VOLMO_SANDBOX_AUTH_PORT: '0',
    VOLMO_SANDBOX_EHR_PORT: '0',
    VOLMO_SANDBOX_PACS_PORT: '0',
    VOLMO_SANDBOX_STATE_DIR: mkdtempSync(join(tmpdir(), 'volmo-state-')),
    VOLMO_SANDBOX_PACS: 'none',
    VOLMO_SANDBOX_MODEL: 'none',
    ...env,
  });
  const svc = await startService(config, createLogger({ level: 'debug', destination: sink }));
  return { svc, logs };
}

/** A token the EHR simulator obtains for itself (client_credentials), as it hands to hook calls. */
export async function ehrBackendToken(svc: RunningService, scope = 'system/Patient.rs'): Promise<{ access_token: string; expires_in: number; scope: string }> {
  const sb = svc.sandbox!;
  const smart = (await (await fetch(`${sb.fhirBaseUrl}/.well-known/smart-configuration`)).json()) as { token_endpoint: string };
  const res = await fetch(smart.token_endpoint, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await sb.ehr.clientAssertion(smart.token_endpoint, SANDBOX_CLIENT_IDS.ehrSimulator),
    }),
  });
  return (await res.json()) as { access_token: string; expires_in: number; scope: string };
}

/** The FHIR id of a fixture patient (read with the EHR simulator's backend token). */
export async function fixturePatientId(svc: RunningService, mrn: string): Promise<string> {
  const { access_token } = await ehrBackendToken(svc);
  const found = await fetch(`${svc.sandbox!.fhirBaseUrl}/Patient?identifier=${encodeURIComponent(`${FIXTURE_MRN_SYSTEM}|${mrn}`)}`, { headers: { authorization: `Bearer ${access_token}` } });
  return ((await found.json()) as { entry: { resource: { id: string } }[] }).entry[0]!.resource.id;
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
