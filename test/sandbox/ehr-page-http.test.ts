/**
 * The sandbox EHR page's server over HTTP, against the real sandbox (no model, no PACS): the page and its CSP,
 * the patient list from the sandbox FHIR server, a real signed hook call, a real EHR launch, and every refused
 * input (content type, Origin, Host, JSON, hook, patient, link URL, appContext, body size, routes).
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { CookieJarClient, fixturePatientId, startLaunchService, type CapturedService } from '../launch/smart-launch-flow.js';

let s: CapturedService;
let page: string;
let origin: string;

beforeAll(async () => {
  s = await startLaunchService();
  page = s.svc.sandbox!.ehrPageUrl;
  origin = new URL(page).origin;
}, 60_000);
afterAll(async () => {
  await s?.svc.close();
});

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('the sandbox EHR page', () => {
  it('is served on the EHR simulator origin with a nonce CSP that frames only the service and the auth server', async () => {
    expect(origin).toBe(s.svc.sandbox!.ehr.origin);
    const res = await fetch(page);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    const html = await res.text();
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(csp).toContain(`frame-src ${new URL(s.svc.url).origin} ${new URL(s.svc.sandbox!.authIssuer).origin}`);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self'");
    // The app lets this page frame it (and still no other origin).
    const app = await fetch(`${s.svc.url}/app?session=${'a'.repeat(43)}`);
    expect(app.headers.get('content-security-policy')).toMatch(new RegExp(`frame-ancestors ${origin.replace(/[.:/]/g, '\\$&')}(;|$)`));
  });

  it('lists the fixture patients by name from the sandbox FHIR server', async () => {
    const res = await fetch(`${origin}/api/patients`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { clinician: string; patients: { id: string; name: string; fixture?: string }[] };
    expect(body.clinician).toBe('Practitioner/sandbox-practitioner');
    const fixtures = listFixturePatients();
    expect(body.patients.filter((p) => p.fixture).map((p) => p.name).sort()).toEqual(fixtures.map((f) => f.name).sort());
    const diabetic = fixtures.find((f) => f.key === 'diabetic')!;
    const listed = body.patients.find((p) => p.fixture === 'diabetic') as { id: string; scenario?: string };
    expect(listed.id).toBe(await fixturePatientId(s.svc, diabetic.mrn));
    expect(listed.scenario).toBe(diabetic.description);
  });

  it('sends a real signed hook call and answers the cards as text data', async () => {
    const id = await fixturePatientId(s.svc, listFixturePatients()[0]!.mrn);
    const res = await post('/api/hook', { hook: 'patient-view', patientId: id });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: number; cards: unknown[] };
    expect(body.status).toBe(200);
    expect(Array.isArray(body.cards)).toBe(true);
    const logged = s.logs.filter((l) => l.includes('sandbox EHR page')).join('');
    expect(logged).toContain('"hook":"patient-view"');
    expect(logged).not.toContain(id);
  });

  it('creates a real EHR launch that ends in the app with the patient', async () => {
    const p = listFixturePatients().find((f) => f.key === 'amd')!;
    const id = await fixturePatientId(s.svc, p.mrn);
    const res = await post('/api/launch', { patientId: id, url: `${s.svc.url}/launch`, appContext: '{"analysis":"none-yet"}' });
    expect(res.status).toBe(200);
    const { url } = (await res.json()) as { url: string };
    expect(url.startsWith(`${s.svc.url}/launch?iss=`)).toBe(true);
    const app = await new CookieJarClient().follow(url);
    expect(app.status).toBe(200);
    expect(app.body).toContain(p.name);
    // The launch is one-time.
    const again = await new CookieJarClient().follow(url);
    expect(again.status).toBe(400);
  });

  it('refuses what its own script would never send', async () => {
    const id = await fixturePatientId(s.svc, listFixturePatients()[0]!.mrn);
    const cases: [string, Promise<Response>, number, RegExp][] = [
      ['form post', fetch(`${origin}/api/hook`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin }, body: 'hook=order-sign' }), 415, /application\/json/],
      ['foreign origin', post('/api/hook', { hook: 'order-sign', patientId: id }, { origin: 'http://127.0.0.1:1' }), 403, /Origin/],
      ['no origin', fetch(`${origin}/api/hook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }), 403, /Origin/],
      ['not JSON', post('/api/hook', '{nope'), 400, /not JSON/],
      ['an array', post('/api/hook', '[]'), 400, /JSON object/],
      ['unknown hook', post('/api/hook', { hook: 'order-dispatch', patientId: id }), 400, /hook must be one of/],
      ['bad patient id', post('/api/hook', { hook: 'order-sign', patientId: '../Patient' }), 400, /FHIR id/],
      ['unknown patient', post('/api/hook', { hook: 'order-sign', patientId: 'no-such-patient' }), 404, /no such patient/],
      ['foreign app URL', post('/api/launch', { patientId: id, url: 'http://127.0.0.1:1/launch' }), 400, /registered app/],
      ['appContext not a string', post('/api/launch', { patientId: id, appContext: { analysis: 'x' } }), 400, /appContext/],
      ['appContext too long', post('/api/launch', { patientId: id, appContext: 'x'.repeat(4097) }), 400, /appContext/],
      ['body too large', post('/api/launch', { patientId: id, pad: 'x'.repeat(20_000) }), 413, /too large/],
      ['chart of no patient', fetch(`${origin}/api/chart`), 400, /FHIR id/],
      ['GET of a POST route', fetch(`${origin}/api/hook`), 405, /method/],
      ['unknown path', fetch(`${origin}/nothing-here`), 404, /not found/],
    ];
    for (const [name, pending, status, message] of cases) {
      const res = await pending;
      expect(res.status, name).toBe(status);
      expect(((await res.json()) as { error: string }).error, name).toMatch(message);
    }
  });

  it('answers only on loopback host names (no DNS rebinding)', async () => {
    const { port } = new URL(origin);
    const status = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/api/patients', headers: { host: `ehr.attacker.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });
    expect(status).toBe(421);
  });

  it('still serves the EHR simulator JWKS on the same origin', async () => {
    const res = await fetch(s.svc.sandbox!.ehr.jku);
    expect(((await res.json()) as { keys: unknown[] }).keys).toHaveLength(1);
  });
});
