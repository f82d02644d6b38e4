/** GET /admin/audit: the write-back audit trail for operators (operator token), oldest first, filtered by time and analysis; bad filters refused. */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { startEhrSimulator, type EhrSimulator } from '../../src/sandbox/ehr-simulator.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { buildTestApp } from '../helpers/build-app.js';

const token = 'operator-'.repeat(5);
let ehr: EhrSimulator;
let t: ReturnType<typeof buildTestApp>;
const store = new MemoryStore({ retention: { analysisMs: 86_400_000 }, log: silentLogger() });
const T0 = Date.UTC(2026, 11, 1, 9);

beforeAll(async () => {
  ehr = await startEhrSimulator();
  t = buildTestApp(ehr, { env: { VOLMO_OPERATOR_TOKEN: token }, audit: store.audit });
  const base = { profile: 'fhir-standard', fhirOrigin: 'https://ehr.example.org', resources: ['DiagnosticReport/1'] };
  await store.audit.append({ ...base, at: T0, actor: 'system', action: 'writeback.draft', analysisId: 'a-1', outcome: 'written' });
  await store.audit.append({ ...base, at: T0 + 60_000, actor: 'Practitioner/p1', action: 'writeback.approve', analysisId: 'a-1', outcome: 'written', httpStatus: 200 });
  await store.audit.append({ ...base, at: T0 + 120_000, actor: 'system', action: 'writeback.draft', analysisId: 'a-2', outcome: 'refused', httpStatus: 403 });
});
afterAll(async () => ehr.close());

describe('GET /admin/audit', () => {
  it('needs the operator token', async () => {
    expect((await request(t.app).get('/admin/audit')).status).toBe(401);
  });

  it('lists who, what, when, which analysis and the answer, oldest first; by analysis and since', async () => {
    const get = (q: string) => request(t.app).get(`/admin/audit${q}`).set('authorization', `Bearer ${token}`);
    const all = await get('');
    expect(all.status).toBe(200);
    expect(all.headers['cache-control']).toBe('no-store');
    expect(all.body.audit.map((e: any) => [e.actor, e.action, e.analysisId, e.outcome, e.httpStatus])).toEqual([
      ['system', 'writeback.draft', 'a-1', 'written', undefined],
      ['Practitioner/p1', 'writeback.approve', 'a-1', 'written', 200],
      ['system', 'writeback.draft', 'a-2', 'refused', 403],
    ]);
    expect(all.body.audit[0].at).toBe(new Date(T0).toISOString());
    expect((await get('?analysis=a-2')).body.audit.map((e: any) => e.outcome)).toEqual(['refused']);
    expect((await get(`?since=${new Date(T0 + 30_000).toISOString()}`)).body.audit).toHaveLength(2);
    expect((await get('?since=yesterday')).status).toBe(400);
    expect((await get('?analysis=..%2Fetc')).status).toBe(400);
  });
});
