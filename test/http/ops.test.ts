import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operatorOnly } from '../../src/http/app.js';
import { listen } from '../../src/http/server.js';
import { silentLogger } from '../../src/log.js';
import { startEhrSimulator, type EhrSimulator } from '../../src/sandbox/ehr-simulator.js';
import { buildTestApp, PUBLIC_URL } from '../helpers/build-app.js';

describe('operational endpoints', () => {
  let ehr: EhrSimulator;
  beforeAll(async () => {
    ehr = await startEhrSimulator();
  });
  afterAll(async () => ehr.close());

  it('/healthz is alive and /readyz reports each check', async () => {
    let modelOk = false;
    const { app } = buildTestApp(ehr, {
      readiness: [
        { name: 'model', check: async () => (modelOk ? { ok: true } : { ok: false, detail: 'manifest checksum mismatch: decoder.onnx' }) },
        { name: 'store', check: async () => ({ ok: true }) },
      ],
    });
    expect((await request(app).get('/healthz')).body).toEqual({ status: 'alive' });
    const notReady = await request(app).get('/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body.checks[0]).toEqual({ name: 'model', ok: false, detail: 'manifest checksum mismatch: decoder.onnx' });
    modelOk = true;
    expect((await request(app).get('/readyz')).status).toBe(200);
  });

  it('a readiness check that throws makes /readyz 503, not 500', async () => {
    const { app } = buildTestApp(ehr, { readiness: [{ name: 'pg', check: async () => Promise.reject(new Error('ECONNREFUSED')) }] });
    const res = await request(app).get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body.checks[0]).toMatchObject({ name: 'pg', ok: false, detail: 'ECONNREFUSED' });
  });

  it('exposes Prometheus metrics counting hook calls by route pattern (no ids)', async () => {
    const { app } = buildTestApp(ehr);
    const url = `${PUBLIC_URL}/cds-services/volmo-eye-summary-patient-view`;
    await request(app)
      .post('/cds-services/volmo-eye-summary-patient-view')
      .set('authorization', `Bearer ${await ehr.signJwt(url)}`)
      .send({ hook: 'patient-view', hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea', context: { userId: 'Practitioner/1', patientId: 'secret-patient-9' } });
    const res = await request(app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/volmo_cds_hook_calls_total\{service="volmo-eye-summary-patient-view",outcome="ok"\} 1/);
    expect(res.text).toMatch(/volmo_http_requests_total\{method="POST",route="\/cds-services\/:id",status="200"\} 1/);
    expect(res.text).not.toContain('secret-patient-9');
  });

  it('/metrics needs the operator token when one is configured (issue 14 finding 7)', async () => {
    const token = 'op-'.repeat(12);
    const { app } = buildTestApp(ehr, { env: { VOLMO_OPERATOR_TOKEN: token } });
    expect((await request(app).get('/metrics')).status).toBe(401);
    expect((await request(app).get('/metrics').set('authorization', 'Bearer wrong')).status).toBe(401);
    const ok = await request(app).get('/metrics').set('authorization', `Bearer ${token}`);
    expect(ok.status).toBe(200);
    expect(ok.text).toMatch(/volmo_http_requests_total/);
  });

  it('without an operator token, /metrics answers loopback callers only', async () => {
    const gate = operatorOnly(undefined);
    const verdict = (remoteAddress: string) =>
      new Promise<unknown>((resolve) => gate({ socket: { remoteAddress }, get: () => undefined } as never, {} as never, resolve as never));
    expect(await verdict('127.0.0.1')).toBeUndefined();
    expect(await verdict('::ffff:127.0.0.1')).toBeUndefined();
    expect(await verdict('::1')).toBeUndefined();
    expect(await verdict('10.1.2.3')).toMatchObject({ code: 'forbidden', status: 403 });
    expect(await verdict('::ffff:10.1.2.3')).toMatchObject({ code: 'forbidden' });
  });

  it('graceful shutdown lets an in-flight request finish and refuses new connections', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { app } = buildTestApp(ehr, {
      env: { VOLMO_CDS_REQUIRE_JWT: 'false' },
      handler: async () => {
        await gate;
        return { cards: [{ summary: 'done', indicator: 'info', source: { label: 'test' } }] };
      },
    });
    const srv = await listen(app, '127.0.0.1', 0, silentLogger());
    const serviceUrl = `${srv.url}/cds-services/volmo-eye-exam-order-sign`;
    const signed = await ehr.signJwt(`${PUBLIC_URL}/cds-services/volmo-eye-exam-order-sign`);
    const inflight = fetch(serviceUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${signed}` },
      body: JSON.stringify({ hook: 'order-sign', hookInstance: 'e1577c69-dfbe-44ad-ba6d-3e05e953b2eb', context: { userId: 'Practitioner/1', patientId: 'p', draftOrders: { resourceType: 'Bundle' } } }),
    });
    await new Promise((r) => setTimeout(r, 100));
    const closed = srv.close(5_000);
    await new Promise((r) => setTimeout(r, 50));
    const refused = await fetch(`${srv.url}/healthz`).then(() => 'answered', () => 'refused');
    expect(refused).toBe('refused');
    release();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect((await res.json()).cards[0].summary).toBe('done');
    await closed;
  });
});
