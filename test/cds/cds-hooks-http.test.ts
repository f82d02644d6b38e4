import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CDS_SERVICES } from '../../cds-hooks/index.js';
import { normaliseAudience } from '../../src/cds/jwt-verifier.js';
import { startEhrSimulator, type EhrSimulator } from '../../src/sandbox/ehr-simulator.js';
import { buildTestApp, PUBLIC_URL } from '../helpers/build-app.js';

const SIGN = 'volmo-eye-exam-order-sign';
const signUrl = `${PUBLIC_URL}/cds-services/${SIGN}`;

function orderSignBody(over: Record<string, unknown> = {}) {
  return {
    hook: 'order-sign',
    hookInstance: randomUUID(),
    context: { userId: 'Practitioner/prac-1', patientId: 'pat-1', draftOrders: { resourceType: 'Bundle', type: 'collection', entry: [] } },
    ...over,
  };
}

for (const alg of ['ES384', 'RS384'] as const) {
  describe(`CDS Hooks endpoints (client signs with ${alg})`, () => {
    let ehr: EhrSimulator;
    let t: ReturnType<typeof buildTestApp>;
    beforeAll(async () => {
      ehr = await startEhrSimulator({ alg });
      t = buildTestApp(ehr);
    });
    afterAll(async () => ehr.close());

    it('serves the discovery document to a signed caller', async () => {
      const res = await request(t.app).get('/cds-services').set('authorization', `Bearer ${await ehr.signJwt(`${PUBLIC_URL}/cds-services`)}`);
      expect(res.status).toBe(200);
      expect(res.body.services.map((s: { id: string }) => s.id)).toEqual(CDS_SERVICES.map((s) => s.id));
      for (const s of res.body.services) {
        expect(s.description.length).toBeGreaterThan(20);
        expect(['order-sign', 'order-select', 'patient-view']).toContain(s.hook);
        expect(s.prefetch.patient).toBe('Patient/{{context.patientId}}');
      }
    });

    it('answers a signed order-sign call with a card list', async () => {
      const res = await request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await ehr.signJwt(signUrl)}`).send(orderSignBody());
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ cards: [] });
    });

    it.each([
      ['no token', async () => undefined],
      ['wrong audience', async () => ehr.signJwt(`${PUBLIC_URL}/cds-services/other`)],
      ['discovery audience reused on a service', async () => ehr.signJwt(`${PUBLIC_URL}/cds-services`)],
      ['bad signature', async () => ehr.signJwt(signUrl, { rogueKey: true })],
      ['expired', async () => ehr.signJwt(signUrl, { iatOffsetSeconds: -3600 })],
      ['lifetime too long', async () => ehr.signJwt(signUrl, { expiresInSeconds: 24 * 3600 })],
      ['garbage', async () => 'not-a-jwt'],
    ])('refuses %s with a bare 401', async (_name, token) => {
      const tok = await token();
      const req = request(t.app).post(`/cds-services/${SIGN}`).send(orderSignBody());
      if (tok) req.set('authorization', `Bearer ${tok}`);
      const res = await req;
      expect(res.status).toBe(401);
      expect(res.text).toBe('');
      expect(res.headers['www-authenticate']).toBe('Bearer');
    });

    it('refuses a replayed jti', async () => {
      const jti = randomUUID();
      const first = await request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await ehr.signJwt(signUrl, { jti })}`).send(orderSignBody());
      expect(first.status).toBe(200);
      const again = await request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await ehr.signJwt(signUrl, { jti })}`).send(orderSignBody());
      expect(again.status).toBe(401);
    });

    it('refuses a jku that is not on the issuer allowlist, before fetching it', async () => {
      const other = await startEhrSimulator({ alg, iss: ehr.iss });
      try {
        const res = await request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await other.signJwt(signUrl)}`).send(orderSignBody());
        expect(res.status).toBe(401);
      } finally {
        await other.close();
      }
    });
  });
}

describe('CDS Hooks request validation', () => {
  let ehr: EhrSimulator;
  let t: ReturnType<typeof buildTestApp>;
  beforeAll(async () => {
    ehr = await startEhrSimulator();
    t = buildTestApp(ehr);
  });
  afterAll(async () => ehr.close());
  const post = async (body: unknown, raw = false) => {
    const r = request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await ehr.signJwt(signUrl)}`);
    return raw ? r.set('content-type', 'application/json').send(body as string) : r.send(body as object);
  };

  it('rejects malformed JSON with 400 and an OperationOutcome', async () => {
    const res = await post('{"hook": "order-sign",', true);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toMatch(/not valid JSON/);
  });

  it.each([
    ['missing hookInstance', orderSignBody({ hookInstance: undefined }), /hookInstance/],
    ['wrong hook for the service', orderSignBody({ hook: 'patient-view' }), /answers the order-sign hook/],
    ['missing draftOrders', orderSignBody({ context: { userId: 'Practitioner/1', patientId: 'p' } }), /context.draftOrders/],
    ['bad userId', orderSignBody({ context: { userId: 'Device/1', patientId: 'p', draftOrders: { resourceType: 'Bundle' } } }), /context.userId/],
  ])('rejects %s with 400', async (_n, body, re) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(re);
    expect(t.calls.length).toBe(0);
  });

  it.each([
    ['fhirAuthorization without fhirServer (cds-r-1)', orderSignBody({ fhirAuthorization: { access_token: 'x', token_type: 'Bearer', expires_in: 300, scope: 'user/Patient.read', subject: 'volmo' } }), /cds-r-1/],
    [
      'patient/ scope without patient (cds-r-2)',
      orderSignBody({ fhirServer: 'https://ehr.example.org/fhir', fhirAuthorization: { access_token: 'x', token_type: 'Bearer', expires_in: 300, scope: 'patient/Patient.read', subject: 'volmo' } }),
      /cds-r-2/,
    ],
    [
      'a token for another patient',
      orderSignBody({ fhirServer: 'https://ehr.example.org/fhir', fhirAuthorization: { access_token: 'x', token_type: 'Bearer', expires_in: 300, scope: 'patient/Patient.read', subject: 'volmo', patient: 'someone-else' } }),
      /another patient/,
    ],
    ['a malformed token', orderSignBody({ fhirServer: 'https://ehr.example.org/fhir', fhirAuthorization: { access_token: '', token_type: 'MAC', scope: 'user/*.read', subject: 'v' } }), /malformed: fhirAuthorization.access_token.*fhirAuthorization.token_type/],
  ])('does not use %s: the call goes on from prefetch alone, with the reason', async (_n, body, re) => {
    const before = t.calls.length;
    const res = await post(body);
    expect(res.status).toBe(200);
    const seen = t.calls[before] as { fhirAuthorization?: unknown; fhirAuthorizationUnusable?: string };
    expect(seen.fhirAuthorization).toBeUndefined();
    expect(seen.fhirAuthorizationUnusable).toMatch(re);
  });

  it('accepts a fhirAuthorization without expires_in', async () => {
    const before = t.calls.length;
    const res = await post(orderSignBody({ fhirServer: 'https://ehr.example.org/fhir', fhirAuthorization: { access_token: 'x', token_type: 'bearer', scope: 'user/Patient.read', subject: 'volmo' } }));
    expect(res.status).toBe(200);
    expect((t.calls[before] as { fhirAuthorization?: { access_token: string } }).fhirAuthorization?.access_token).toBe('x');
  });

  it('answers 404 for an unknown service and a too-large body with 413', async () => {
    const r404 = await request(t.app).post('/cds-services/nope').send(orderSignBody());
    expect(r404.status).toBe(404);
    const huge = orderSignBody({ prefetch: { blob: 'x'.repeat(6 * 1024 * 1024) } });
    const r413 = await post(huge);
    expect(r413.status).toBe(413);
  });

  it('records feedback idempotently, accepting the /feedback audience and Epic’s overrideReasons spelling', async () => {
    const fb = {
      feedback: [{ card: 'c-1', outcome: 'overridden', overrideReasons: { userComment: 'already referred' }, outcomeTimestamp: '2026-11-29T10:00:00Z' }],
    };
    for (let i = 0; i < 2; i++) {
      const res = await request(t.app).post(`/cds-services/${SIGN}/feedback`).set('authorization', `Bearer ${await ehr.signJwt(`${signUrl}/feedback`)}`).send(fb);
      expect(res.status).toBe(200);
    }
    expect(t.feedback.items.size).toBe(1);
    const bad = await request(t.app).post(`/cds-services/${SIGN}/feedback`).set('authorization', `Bearer ${await ehr.signJwt(`${signUrl}/feedback`)}`).send({ feedback: [{ card: 'c', outcome: 'maybe' }] });
    expect(bad.status).toBe(400);
  });

  it('answers CORS preflight only for allowed origins', async () => {
    const ok = await request(t.app).options(`/cds-services/${SIGN}`).set('origin', 'http://sandbox.test');
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe('http://sandbox.test');
    const no = await request(t.app).options(`/cds-services/${SIGN}`).set('origin', 'http://evil.test');
    expect(no.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('bodies are read only after the JWT is verified, within depth and count limits (issue 14 finding 3)', () => {
  let ehr: EhrSimulator;
  let t: ReturnType<typeof buildTestApp>;
  let server: Server;
  let base: string;
  beforeAll(async () => {
    ehr = await startEhrSimulator();
    t = buildTestApp(ehr);
    server = t.app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await ehr.close();
  });

  /** Sends the headers and the first bytes of a 4.9 MB body, then waits for an answer without sending the rest. */
  const partialPost = (authorization?: string) =>
    new Promise<{ status: number; connection?: string }>((resolve, reject) => {
      const req = http.request(`${base}/cds-services/${SIGN}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(Math.round(4.9 * 1024 * 1024)), ...(authorization ? { authorization } : {}) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode!, connection: res.headers.connection });
        req.destroy();
      });
      req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
      req.setTimeout(3000, () => {
        req.destroy();
        reject(new Error('no answer before the body was complete: the body is read before authentication'));
      });
      req.write('{"hook":"order-sign","prefetch":{"x":[' + '0,'.repeat(1000));
    });

  it('refuses an unauthenticated caller without waiting for (or parsing) its body, and closes the connection', async () => {
    expect(await partialPost()).toEqual({ status: 401, connection: 'close' });
    expect(await partialPost('Bearer not-a-jwt')).toEqual({ status: 401, connection: 'close' });
    expect(t.calls.length).toBe(0);
  });

  const signedPost = async (body: string) =>
    request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await ehr.signJwt(signUrl)}`).set('content-type', 'application/json').send(body);

  it('refuses ~1M tiny nodes and 20,000-deep nesting with 400 before parsing', async () => {
    const many = await signedPost(JSON.stringify(orderSignBody({ prefetch: { x: new Array(1_000_000).fill(0) } })));
    expect(many.status).toBe(400);
    expect(many.body.issue[0].diagnostics).toMatch(/more than 250000 values/);
    const deep = await signedPost(`{"hook":"order-sign","prefetch":{"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`);
    expect(deep.status).toBe(400);
    expect(deep.body.issue[0].diagnostics).toMatch(/nested deeper than 64 levels/);
    expect(t.calls.length).toBe(0);
  });

  it('refuses other media types and compressed bodies with 415', async () => {
    const tok = await ehr.signJwt(signUrl);
    const text = await request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${tok}`).set('content-type', 'text/plain').send('{}');
    expect(text.status).toBe(415);
    const gz = await request(t.app)
      .post(`/cds-services/${SIGN}`)
      .set('authorization', `Bearer ${await ehr.signJwt(signUrl)}`)
      .set('content-type', 'application/json')
      .set('content-encoding', 'gzip')
      .send('{}');
    expect(gz.status).toBe(415);
  });

  it('still accepts a legitimate body, with application/fhir+json too', async () => {
    const res = await request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await ehr.signJwt(signUrl)}`).set('content-type', 'application/fhir+json; charset=utf-8').send(JSON.stringify(orderSignBody()));
    expect(res.status).toBe(200);
  });
});

describe('JWT claims and key sets (issue 14 finding 7)', () => {
  it.each([
    ['a numeric jti', 42],
    ['an object jti', { a: 1 }],
    ['an empty jti', ''],
  ])('refuses %s', async (_n, jti) => {
    const ehr = await startEhrSimulator();
    try {
      const t = buildTestApp(ehr);
      const res = await request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await ehr.signJwt(signUrl, { extraClaims: { jti } })}`).send(orderSignBody());
      expect(res.status).toBe(401);
    } finally {
      await ehr.close();
    }
  });

  it('refuses an oversized key set at an allowlisted jku, even when it holds the right key', async () => {
    const ehr = await startEhrSimulator();
    const padding = Array.from({ length: 4000 }, (_, i) => ({ kty: 'oct', kid: `pad-${i}`, k: 'A'.repeat(500) }));
    let served = 0;
    const jwks = http.createServer((_req, res) => {
      served++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [...ehr.publicJwks().keys, ...padding] }));
    });
    jwks.listen(0, '127.0.0.1');
    await once(jwks, 'listening');
    const hugeJku = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    try {
      const t = buildTestApp(ehr, { clients: [{ iss: ehr.iss, jku: [hugeJku] }] });
      const res = await request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await ehr.signJwt(signUrl, { jku: hugeJku })}`).send(orderSignBody());
      expect(served).toBe(1); // fetched through the allowlist ...
      expect(res.status).toBe(401); // ... and refused past 64 KiB
    } finally {
      jwks.closeAllConnections();
      jwks.close();
      await ehr.close();
    }
  });
});

describe('aud compared after normalising (issue 9 item 7)', () => {
  it.each([
    ['https://CDS.Example.org:443/cds-services/a', 'https://cds.example.org/cds-services/a'],
    ['HTTPS://cds.example.org/cds-services/a/', 'https://cds.example.org/cds-services/a'],
    ['http://cds.example.org:80/x?y=1', 'http://cds.example.org/x?y=1'],
  ])('%s equals %s', (a, b) => expect(normaliseAudience(a)).toBe(normaliseAudience(b)));

  it.each([
    ['https://cds.example.org/CDS-services/a', 'https://cds.example.org/cds-services/a'],
    ['https://cds.example.org:8443/cds-services/a', 'https://cds.example.org/cds-services/a'],
    ['http://cds.example.org/cds-services/a', 'https://cds.example.org/cds-services/a'],
    ['https://cds.example.org/cds-services/a//', 'https://cds.example.org/cds-services/a'],
  ])('%s differs from %s', (a, b) => expect(normaliseAudience(a)).not.toBe(normaliseAudience(b)));

  it('accepts a hand-typed aud with upper-case scheme/host and a trailing slash, and refuses another path', async () => {
    const ehr = await startEhrSimulator();
    try {
      const t = buildTestApp(ehr);
      const typed = `${PUBLIC_URL.replace('http://', 'HTTP://')}/cds-services/${SIGN}/`;
      const ok = await request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await ehr.signJwt(signUrl, { aud: typed })}`).send(orderSignBody());
      expect(ok.status).toBe(200);
      const other = await request(t.app).post(`/cds-services/${SIGN}`).set('authorization', `Bearer ${await ehr.signJwt(signUrl, { aud: `${signUrl}x` })}`).send(orderSignBody());
      expect(other.status).toBe(401);
    } finally {
      await ehr.close();
    }
  });
});

describe('feedback that counts (issue 9 item 6)', () => {
  const token = 'operator-'.repeat(5);
  let ehr: EhrSimulator;
  let t: ReturnType<typeof buildTestApp>;
  beforeAll(async () => {
    ehr = await startEhrSimulator();
    t = buildTestApp(ehr, { env: { VOLMO_OPERATOR_TOKEN: token } });
  });
  afterAll(async () => ehr.close());
  const send = async (items: unknown[]) =>
    request(t.app).post(`/cds-services/${SIGN}/feedback`).set('authorization', `Bearer ${await ehr.signJwt(`${signUrl}/feedback`)}`).send({ feedback: items });
  const reason = { system: 'urn:volmo-cds:override-reason', code: 'already-referred', display: 'Patient already under eye care or referred' };

  it('is idempotent by card uuid + outcome, and counted once by outcome and reason', async () => {
    const first = { card: 'card-1', outcome: 'overridden', overrideReason: { reason, userComment: 'seen last week' }, outcomeTimestamp: '2026-12-01T10:00:00Z' };
    expect((await send([first])).status).toBe(200);
    expect((await send([{ ...first, outcomeTimestamp: '2026-12-01T10:05:00Z' }])).status).toBe(200); // resent later
    expect((await send([{ card: 'card-1', outcome: 'accepted', acceptedSuggestions: [{ id: 's1' }], outcomeTimestamp: '2026-12-01T10:06:00Z' }])).status).toBe(200);
    const mine = [...t.feedback.items.values()].filter((f) => f.card === 'card-1');
    expect(mine.map((f) => [f.outcome, f.outcomeTimestamp])).toEqual([
      ['overridden', '2026-12-01T10:00:00Z'],
      ['accepted', '2026-12-01T10:06:00Z'],
    ]);
    const metrics = (await request(t.app).get('/metrics').set('authorization', `Bearer ${token}`)).text;
    expect(metrics).toMatch(new RegExp(`volmo_cds_feedback_total\\{service="${SIGN}",outcome="overridden",reason="already-referred"\\} 1`));
    expect(metrics).toMatch(new RegExp(`volmo_cds_feedback_total\\{service="${SIGN}",outcome="accepted",reason="none"\\} 1`));
  });

  it("accepts Epic's plural overrideReasons (object or array) and a comment alone; another system's Coding counts as other", async () => {
    expect((await send([{ card: 'card-2', outcome: 'overridden', overrideReasons: [{ reason: { system: 'urn:epic', code: '7', display: 'Other' } }], outcomeTimestamp: '2026-12-01T11:00:00Z' }])).status).toBe(200);
    expect((await send([{ card: 'card-3', outcome: 'overridden', overrideReasons: { userComment: 'not now' }, outcomeTimestamp: '2026-12-01T11:00:00Z' }])).status).toBe(200);
    expect(t.feedback.items.get(`${SIGN}|card-2|overridden`)?.overrideReason?.reason?.code).toBe('7');
    expect(t.feedback.items.get(`${SIGN}|card-3|overridden`)?.overrideReason?.userComment).toBe('not now');
    const metrics = (await request(t.app).get('/metrics').set('authorization', `Bearer ${token}`)).text;
    expect(metrics).toMatch(/outcome="overridden",reason="other"\} 1/);
  });

  it.each([
    ['an empty overrideReason', { overrideReason: {} }],
    ['a reason Coding without code', { overrideReason: { reason: { system: 'x', display: 'y' } } }],
    ['a string reason', { overrideReason: 'because' }],
    ['a bad outcome', { outcome: 'maybe' }],
    ['a timestamp without zone', { outcomeTimestamp: '2026-12-01T10:00:00' }],
  ])('refuses %s with 400', async (_n, over) => {
    const res = await send([{ card: 'card-9', outcome: 'overridden', overrideReason: { reason }, outcomeTimestamp: '2026-12-01T10:00:00Z', ...over }]);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/invalid feedback/);
  });

  it('is readable by operators only: GET /admin/feedback?since=', async () => {
    expect((await request(t.app).get('/admin/feedback')).status).toBe(401);
    const all = await request(t.app).get('/admin/feedback').set('authorization', `Bearer ${token}`);
    expect(all.status).toBe(200);
    expect(all.body.feedback.length).toBeGreaterThanOrEqual(4);
    expect(all.body.feedback[0]).toMatchObject({ service: SIGN, card: 'card-1', outcome: 'overridden' });
    const none = await request(t.app).get(`/admin/feedback?since=${new Date(Date.now() + 60_000).toISOString()}`).set('authorization', `Bearer ${token}`);
    expect(none.body.feedback).toEqual([]);
    expect((await request(t.app).get('/admin/feedback?since=yesterday').set('authorization', `Bearer ${token}`)).status).toBe(400);
  });
});
