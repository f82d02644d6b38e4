/**
 * Issue 14, finding 4, through the real hook path: signed CDS Hooks call → express app → the real hook handler
 * → evidence gathering from prefetch, or from an allowlisted FHIR server (a real HTTP server on loopback).
 * Each malformed record made the probe's hook answer 500; it must be left out and the hook answered.
 * The engine is a stand-in that is never reached: none of these records yields a readable image.
 */
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MALFORMED, subject } from '../evidence/helpers/malformed-records.js';
import { startStandInHookApp, VIEW, VIEW_URL as viewUrl, type StandInHookApp } from '../helpers/stand-in-hook-app.js';
import { json } from '../net/helpers/scripted-server.js';

const PATIENT = { resourceType: 'Patient', id: 'p1', gender: 'female', birthDate: '1960-01-01' };
const PATHS = { patient: '/fhir/Patient/p1', media: '/fhir/Media', imagingStudies: '/fhir/ImagingStudy' } as const;
const searchset = (resources: unknown[]) => ({ resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) });

/** 200, and at most an informational card (in progress / could not be assessed): never findings from a bad record. */
function expectNoFindings(res: { status: number; body: { cards?: { indicator: string; detail?: string }[] } }): void {
  expect(res.status).toBe(200);
  for (const c of res.body.cards ?? []) {
    expect(c.indicator).toBe('info');
    expect(c.detail ?? '').not.toMatch(/Right eye|Left eye/);
  }
}

describe('hook calls carrying malformed FHIR records (was: 500)', () => {
  let h: StandInHookApp;
  let srv: StandInHookApp['srv'];

  beforeAll(async () => {
    h = await startStandInHookApp();
    srv = h.srv;
  });
  afterAll(() => h.close());

  const body = (extra: Record<string, unknown>) => ({ hook: 'patient-view', hookInstance: randomUUID(), context: { userId: 'Practitioner/prac-1', patientId: 'p1' }, ...extra });
  const post = async (payload: string | object) =>
    request(h.app).post(`/cds-services/${VIEW}`).set('authorization', `Bearer ${await h.ehr.signJwt(viewUrl)}`).set('content-type', 'application/json').send(typeof payload === 'string' ? payload : JSON.stringify(payload));

  for (const [name, { key, resource }] of Object.entries(MALFORMED)) {
    it(`in prefetch: ${name}`, async () => {
      const prefetch = { patient: PATIENT, [key]: key === 'patient' ? resource : searchset([resource]) };
      const res = await post(body({ prefetch }));
      expectNoFindings(res);
    });

    it(`from an allowlisted FHIR server: ${name}`, async () => {
      srv.route(PATHS.patient, (_q, r) => json(r, 200, key === 'patient' ? resource : PATIENT));
      srv.route(PATHS.media, (_q, r) => json(r, 200, searchset(key === 'media' ? [resource] : [])));
      srv.route(PATHS.imagingStudies, (_q, r) => json(r, 200, searchset(key === 'imagingStudies' ? [resource] : [])));
      const fhirAuthorization = { access_token: 'tok-malformed-test', token_type: 'Bearer', expires_in: 300, scope: 'patient/*.read', subject: 'volmo', patient: 'p1' };
      const hits = srv.hits(PATHS[key]);
      const res = await post(body({ fhirServer: `${srv.origin}/fhir`, fhirAuthorization }));
      expectNoFindings(res);
      expect(srv.hits(PATHS[key])).toBe(hits + 1); // the record really came from the server
    });
  }

  it('a prefetch Bundle nested 20,000 deep is not a 5xx', async () => {
    const depth = 20_000; // built as text: JSON.stringify itself overflows the stack at this depth
    const inner = JSON.stringify({ resourceType: 'Media', subject, content: { contentType: 'image/jpeg', data: '/9j/' } });
    const media = `${'{"resourceType":"Bundle","entry":[{"resource":'.repeat(depth)}${inner}${'}]}'.repeat(depth)}`;
    const res = await post(JSON.stringify(body({ prefetch: { patient: PATIENT, media: '@MEDIA@' } })).replace('"@MEDIA@"', media));
    expect(res.status).toBeLessThan(500); // 200 here; a body-depth bound in front of the handler may make it 400
  });
});
