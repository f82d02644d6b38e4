/** Shared by the SMART launch tests: the service + sandbox with captured logs, fixture patient ids, a cookie-jar client. */
import { Writable } from 'node:stream';
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
