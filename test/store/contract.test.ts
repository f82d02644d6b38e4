/**
 * The storage contract: the same cases against memory, SQLite (a temporary file) and the machine's
 * PostgreSQL (a fresh schema per run, dropped after). The durable ones also: survive a reopen, refuse a
 * wrong data key, apply migrations once (also when two open at the same moment), keep PHI and tokens
 * sealed at rest.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/store/migrations.js';
import type { VolmoStore } from '../../src/store/port.js';
import { dropSchema, fakeResult, newSchemaName, open, postgresAvailable, POSTGRES_URL, postgresUrl, tempDir, writeKeyFile } from './helpers.js';

interface Backend {
  name: 'memory' | 'sqlite' | 'postgres';
  /** A database URL for a fresh, empty database of this kind. */
  fresh(): Promise<string>;
  /** Reads raw rows (durable kinds): what someone with the database but not the key would see. */
  raw?(url: string, sql: string): Promise<Record<string, unknown>[]>;
  cleanup(): Promise<void>;
}

const dir = tempDir();
const schemas: string[] = [];
const pgUp = await postgresAvailable();

const BACKENDS: Backend[] = [
  { name: 'memory', fresh: async () => 'memory:', cleanup: async () => {} },
  {
    name: 'sqlite',
    fresh: async () => `sqlite:${join(tempDir(), 'volmo.db')}`,
    raw: async (url, sql) => {
      const db = new Database(url.slice('sqlite:'.length), { readonly: true });
      try {
        return db.prepare(sql).all() as Record<string, unknown>[];
      } finally {
        db.close();
      }
    },
    cleanup: async () => {},
  },
  {
    name: 'postgres',
    fresh: async () => {
      const s = newSchemaName();
      schemas.push(s);
      return postgresUrl(s);
    },
    raw: async (url, sql) => {
      const schema = new URL(url).searchParams.get('schema')!;
      const client = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
      await client.connect();
      try {
        return (await client.query(sql)).rows as Record<string, unknown>[];
      } finally {
        await client.end();
      }
    },
    cleanup: async () => {
      for (const s of schemas) await dropSchema(s);
    },
  },
];

const DAY = 86_400_000;
const ALL_VERSIONS = MIGRATIONS.map((m) => m.version).sort((a, b) => a - b);

for (const backend of BACKENDS) {
  const skip = backend.name === 'postgres' && !pgUp;
  describe.skipIf(skip)(`store contract: ${backend.name}`, () => {
    let clock = Date.UTC(2026, 0, 15);
    const now = () => clock;
    let store: VolmoStore;
    let url: string;
    let keyFile: string;
    beforeAll(async () => {
      url = await backend.fresh();
      keyFile = writeKeyFile(tempDir());
      store = await open(url, keyFile, { now });
    });
    afterAll(async () => {
      await store?.close();
      if (backend.name === 'postgres') await backend.cleanup();
    });

    it('is durable exactly when it says so', () => {
      expect(store.kind).toBe(backend.name);
      expect(store.durable).toBe(backend.name !== 'memory');
    });

    it('analyses: found by key and id, newest first per subject, replaced per key, updated in place', async () => {
      const base = { modelSha: 'm1', references: ['dicom:1.2.3', 'media:Media/9'] };
      await store.analyses.save({ ...base, id: 'a1', key: 'k1', subject: 'ehr|Patient/p1', startedAt: clock - 2000, finishedAt: clock - 1000, result: fakeResult('first') });
      await store.analyses.save({ ...base, id: 'a2', key: 'k2', subject: 'ehr|Patient/p1', startedAt: clock - 500, finishedAt: clock, result: fakeResult('second') });
      await store.analyses.save({ ...base, id: 'a3', key: 'k3', subject: 'other|Patient/p1', startedAt: clock, finishedAt: clock, result: fakeResult('other EHR') });
      const byKey = await store.analyses.findByKey('k1');
      expect(byKey).toMatchObject({ id: 'a1', key: 'k1', subject: 'ehr|Patient/p1', modelSha: 'm1', references: base.references, startedAt: clock - 2000, finishedAt: clock - 1000 });
      expect(byKey!.result.report.note.text).toBe('first');
      expect((await store.analyses.findById('a2'))?.result.report.note.text).toBe('second');
      expect(await store.analyses.findByKey('nope')).toBeUndefined();
      expect((await store.analyses.latestForSubject('ehr|Patient/p1', 5)).map((a) => a.id)).toEqual(['a2', 'a1']);
      expect((await store.analyses.latestForSubject('ehr|Patient/p1', 1)).map((a) => a.id)).toEqual(['a2']);
      expect(await store.analyses.latestForSubject('ehr|Patient/p9', 5)).toEqual([]);

      expect(await store.analyses.update('a1', fakeResult('first, with the second stage'))).toBe(true);
      expect((await store.analyses.findByKey('k1'))?.result.report.note.text).toBe('first, with the second stage');
      expect(await store.analyses.update('missing', fakeResult('x'))).toBe(false);

      await store.analyses.save({ ...base, id: 'a4', key: 'k1', subject: 'ehr|Patient/p1', startedAt: clock, finishedAt: clock, result: fakeResult('rerun') });
      expect((await store.analyses.findByKey('k1'))?.id).toBe('a4');
      expect(await store.analyses.findById('a1')).toBeUndefined();
    });

    it('analyses: never image bytes', async () => {
      const withBytes = { ...fakeResult('x'), evidence: { images: { right: [{ bytes: new Uint8Array([1, 2, 3]) }] } } } as never;
      await expect(store.analyses.save({ id: 'b1', key: 'kb', subject: 's', references: [], modelSha: 'm', startedAt: clock, finishedAt: clock, result: withBytes })).rejects.toThrow(/image bytes are never stored/);
      expect(await store.analyses.findByKey('kb')).toBeUndefined();
    });

    it('analyses: kept for the retention period, then gone and swept (bounded per round)', async () => {
      await store.analyses.save({ id: 'r1', key: 'kr1', subject: 'ret|Patient/x', references: [], modelSha: 'm', startedAt: clock, finishedAt: clock, result: fakeResult('old') });
      await store.analyses.save({ id: 'r2', key: 'kr2', subject: 'ret|Patient/x', references: [], modelSha: 'm', startedAt: clock, finishedAt: clock, result: fakeResult('old too') });
      clock += 29 * DAY;
      expect(await store.analyses.findByKey('kr1')).toBeDefined();
      clock += 2 * DAY;
      expect(await store.analyses.findByKey('kr1')).toBeUndefined();
      expect(await store.analyses.findById('r2')).toBeUndefined();
      expect(await store.analyses.latestForSubject('ret|Patient/x', 5)).toEqual([]);
      expect(await store.analyses.update('r2', fakeResult('late'))).toBe(false);
      const first = await store.sweep({ batch: 1 });
      expect(first.analyses).toBe(1);
      const rest = await store.sweep({ batch: 1000 });
      expect(rest.analyses).toBeGreaterThanOrEqual(1);
      expect((await store.sweep()).analyses).toBe(0);
    });

    it('analyses: a draft filed (approve done) or discarded is kept for the retention from then; a draft written, or a refused filing, does not extend it', async () => {
      const save = (id: string) => store.analyses.save({ id, key: `key-${id}`, subject: 'ret2|Patient/y', references: [], modelSha: 'm', startedAt: clock, finishedAt: clock, result: fakeResult(id) });
      const settle = async (key: string, analysisId: string, action: 'draft' | 'approve' | 'discard', state: 'done' | 'refused') => {
        expect(await store.writeback.begin({ key, analysisId, action, profile: 'fhir-standard' })).toBe(true);
        expect(await store.writeback.settle(key, state, [])).toBe(true);
      };
      for (const id of ['filed', 'discarded', 'drafted', 'refused', 'untouched']) await save(id);
      const t0 = clock;
      clock = t0 + 20 * DAY;
      await settle('ret-filed', 'filed', 'approve', 'done');
      await settle('ret-discarded', 'discarded', 'discard', 'done');
      await settle('ret-drafted', 'drafted', 'draft', 'done');
      await settle('ret-refused', 'refused', 'approve', 'refused');
      clock = t0 + 31 * DAY; // 30 days after finishing: only the filed and the discarded one are left
      const live = async () => (await store.analyses.latestForSubject('ret2|Patient/y', 10)).map((a) => a.id).sort();
      expect(await live()).toEqual(['discarded', 'filed']);
      expect((await store.analyses.findByKey('key-filed'))?.result.report.note.text).toBe('filed');
      await store.sweep({ batch: 1000 });
      clock = t0 + 49 * DAY; // 29 days after filing
      expect(await live()).toEqual(['discarded', 'filed']);
      expect(await store.analyses.findById('discarded')).toBeDefined();
      // A second filing of a kept analysis never shortens it; filing one already gone does not bring it back.
      await settle('ret-untouched', 'untouched', 'approve', 'done');
      expect(await store.analyses.findById('untouched')).toBeUndefined();
      clock = t0 + 51 * DAY;
      expect(await live()).toEqual([]);
      expect((await store.sweep({ batch: 1000 })).analyses).toBeGreaterThanOrEqual(2);
    });

    it('feedback: one record per service + card + outcome, listed oldest first from a date', async () => {
      const item = (card: string, outcome: 'accepted' | 'overridden', comment?: string) => ({ card, outcome, outcomeTimestamp: new Date(clock).toISOString(), ...(comment ? { overrideReason: { userComment: comment } } : {}) });
      expect(await store.feedback.record('svc', [item('c1', 'accepted'), item('c2', 'overridden', 'patient declined')])).toHaveLength(2);
      expect(await store.feedback.record('svc', [item('c1', 'accepted'), item('c1', 'overridden')])).toEqual([item('c1', 'overridden')]);
      const t1 = clock;
      clock += 60_000;
      await store.feedback.record('svc', [item('c3', 'accepted')]);
      const all = await store.feedback.list({ limit: 10 });
      // Oldest first; records received in the same millisecond in any order.
      expect(all.map((f) => `${f.card}:${f.outcome}`).slice(0, 3).sort()).toEqual(['c1:accepted', 'c1:overridden', 'c2:overridden']);
      expect(all[3]).toMatchObject({ card: 'c3', outcome: 'accepted' });
      expect(all.find((f) => f.card === 'c2')).toMatchObject({ service: 'svc', receivedAt: new Date(t1).toISOString(), overrideReason: { userComment: 'patient declined' } });
      expect((await store.feedback.list({ since: new Date(t1 + 1), limit: 10 })).map((f) => f.card)).toEqual(['c3']);
      expect(await store.feedback.list({ limit: 2 })).toHaveLength(2);
    });

    it('JWT replay: an id is accepted once until it expires', async () => {
      expect(await store.replay.checkAndRemember('iss\u0000jti-1', clock + 60_000)).toBe(true);
      expect(await store.replay.checkAndRemember('iss\u0000jti-1', clock + 60_000)).toBe(false);
      expect(await store.replay.checkAndRemember('other\u0000jti-1', clock + 60_000)).toBe(true);
      clock += 61_000;
      expect(await store.replay.checkAndRemember('iss\u0000jti-1', clock + 60_000)).toBe(true);
    });

    it('JWT replay: concurrent checks of one id accept exactly one', async () => {
      const answers = await Promise.all(Array.from({ length: 8 }, () => store.replay.checkAndRemember('iss\u0000race', clock + 60_000)));
      expect(answers.filter(Boolean)).toHaveLength(1);
    });

    it('JWT replay: expired records are swept, a bounded number per round', async () => {
      for (let i = 0; i < 5; i++) await store.replay.checkAndRemember(`sweep-${i}`, clock + 1000);
      clock += 2000;
      if (store.durable) {
        expect((await store.sweep({ batch: 2 })).replay).toBe(2);
        expect((await store.sweep({ batch: 100 })).replay).toBeGreaterThanOrEqual(3);
      }
      expect(await store.replay.checkAndRemember('sweep-0', clock + 1000)).toBe(true);
    });

    it('keyed records: put/get, one-time take, expiry, namespaces apart', async () => {
      const launches = store.keyed<{ verifier: string }>('smart-launch');
      const sessions = store.keyed<{ accessToken: string }>('smart-session');
      expect(await launches.put('state-1', { verifier: 'v1' }, 60_000)).toBe(true);
      expect(await sessions.get('state-1')).toBeUndefined();
      expect(await launches.get('state-1')).toEqual({ verifier: 'v1' });
      expect(await launches.take('state-1')).toEqual({ verifier: 'v1' });
      expect(await launches.take('state-1')).toBeUndefined();
      expect(await sessions.put('s1', { accessToken: 'tok-1' }, 1000)).toBe(true);
      expect(await sessions.put('s1', { accessToken: 'tok-2' }, 1000)).toBe(true);
      expect(await sessions.get('s1')).toEqual({ accessToken: 'tok-2' });
      clock += 1001;
      expect(await sessions.get('s1')).toBeUndefined();
      expect(await sessions.take('s1')).toBeUndefined();
    });

    it('keyed records: concurrent takes of one state give it once', async () => {
      const launches = store.keyed<string>('smart-launch');
      await launches.put('once', 'value', 60_000);
      const got = await Promise.all(Array.from({ length: 6 }, () => launches.take('once')));
      expect(got.filter((v) => v !== undefined)).toEqual(['value']);
    });

    it('watcher marks: kept per source, overwritten', async () => {
      expect(await store.marks.get('fhir x')).toBeUndefined();
      await store.marks.set('fhir x', '2026-01-01T00:00:00Z');
      await store.marks.set('pacs y', 'm2');
      await store.marks.set('fhir x', '2026-01-02T00:00:00Z');
      expect(await store.marks.get('fhir x')).toBe('2026-01-02T00:00:00Z');
      expect(await store.marks.get('pacs y')).toBe('m2');
    });

    it('jobs: one job per key; the queued payload is refreshed; claimed by one worker under a lease', async () => {
      const a = await store.jobs.enqueue('jk1', { access: 'first' });
      expect(a.queued).toBe(true);
      expect(a.job).toMatchObject({ key: 'jk1', state: 'queued', attempts: 0, maxAttempts: 3 });
      const again = await store.jobs.enqueue('jk1', { access: 'fresher' });
      expect(again).toMatchObject({ queued: false, job: { id: a.job.id, state: 'queued' } });
      const claimed = await store.jobs.claim<{ access: string }>(30_000);
      expect(claimed).toMatchObject({ id: a.job.id, state: 'running', attempts: 1, leaseUntil: clock + 30_000, payload: { access: 'fresher' } });
      expect(await store.jobs.claim(30_000)).toBeUndefined();
      expect((await store.jobs.enqueue('jk1', { access: 'during the run' })).queued).toBe(false);
      clock += 20_000;
      expect(await store.jobs.heartbeat(claimed!, 30_000)).toBe(true);
      clock += 20_000; // past the first lease, within the renewed one
      expect(await store.jobs.claim(30_000)).toBeUndefined();
      expect(await store.jobs.complete(claimed!, 'analysis-jk1')).toBe(true);
      expect(await store.jobs.get(a.job.id)).toMatchObject({ state: 'done', analysisId: 'analysis-jk1', attempts: 1 });
      expect(await store.jobs.complete(claimed!, 'again')).toBe(false);
    });

    it('jobs: a done job stays done while its analysis is retained, and is queued again once it is gone', async () => {
      const { job } = await store.jobs.enqueue('jk-done', { n: 1 });
      const c = (await store.jobs.claim(10_000))!;
      expect(c.id).toBe(job.id);
      await store.analyses.save({ id: 'an-done', key: 'ak-done', subject: 's', references: [], modelSha: 'm', startedAt: clock, finishedAt: clock, result: fakeResult('x') });
      await store.jobs.complete(c, 'an-done');
      expect(await store.jobs.enqueue('jk-done', { n: 2 })).toMatchObject({ queued: false, job: { state: 'done', analysisId: 'an-done' } });
      clock += 31 * DAY;
      const revived = await store.jobs.enqueue('jk-done', { n: 3 });
      expect(revived).toMatchObject({ queued: true, job: { id: job.id, state: 'queued', attempts: 0 } });
      expect(revived.job.analysisId).toBeUndefined();
      const c2 = (await store.jobs.claim<{ n: number }>(10_000))!;
      expect(c2.payload).toEqual({ n: 3 });
      expect(await store.jobs.complete(c2, 'an-done-2')).toBe(true);
    });

    it('jobs: a worker that died is replaced once its lease expires; its late completion is refused', async () => {
      const { job } = await store.jobs.enqueue('jk-lease', { p: 1 });
      const first = (await store.jobs.claim(5_000))!;
      expect(first.id).toBe(job.id);
      clock += 4_999;
      expect(await store.jobs.claim(5_000)).toBeUndefined();
      clock += 2;
      const second = (await store.jobs.claim(5_000))!;
      expect(second).toMatchObject({ id: job.id, attempts: 2, payload: { p: 1 } });
      expect(second.claim).not.toBe(first.claim);
      expect(await store.jobs.heartbeat(first, 5_000)).toBe(false);
      expect(await store.jobs.complete(first, 'stale')).toBe(false);
      expect(await store.jobs.fail({ ...first }, { errorKind: 'internal', retryable: true, backoffMs: 1000, holdMs: 0 })).toBe('lost');
      expect(await store.jobs.complete(second, 'an-lease')).toBe(true);
    });

    it('jobs: retried with exponential backoff, then dead with the error kind (payload dropped); a dead worker on the last attempt is dead too', async () => {
      const { job } = await store.jobs.enqueue('jk-retry', { secret: 'token-abc' }, { maxAttempts: 3 });
      const c1 = (await store.jobs.claim(60_000))!;
      expect(await store.jobs.fail(c1, { errorKind: 'upstream_timeout', retryable: true, backoffMs: 1000, holdMs: 60_000 })).toBe('queued');
      expect(await store.jobs.get(job.id)).toMatchObject({ state: 'queued', errorKind: 'upstream_timeout', runAt: clock + 1000 });
      expect(await store.jobs.claim(60_000)).toBeUndefined();
      // A new request for it (the next chart action) makes it due at once.
      expect((await store.jobs.enqueue('jk-retry', { secret: 'token-abc' })).job.state).toBe('queued');
      expect((await store.jobs.get(job.id))?.runAt).toBe(clock);
      const c2 = (await store.jobs.claim(60_000))!;
      expect(c2.attempts).toBe(2);
      expect(await store.jobs.fail(c2, { errorKind: 'upstream_timeout', retryable: true, backoffMs: 1000, holdMs: 60_000 })).toBe('queued');
      expect((await store.jobs.get(job.id))?.runAt).toBe(clock + 2000);
      clock += 2000;
      const c3 = (await store.jobs.claim(60_000))!;
      expect(await store.jobs.fail(c3, { errorKind: 'model_unavailable', retryable: true, backoffMs: 1000, holdMs: 60_000 })).toBe('dead');
      expect(await store.jobs.get(job.id)).toMatchObject({ state: 'dead', errorKind: 'model_unavailable', attempts: 3 });
      expect((await store.jobs.list({ state: 'dead', limit: 10 })).map((j) => j.id)).toContain(job.id);
      expect(await store.jobs.enqueue('jk-retry', { secret: 'token-def' })).toMatchObject({ queued: false, job: { state: 'dead' } });
      clock += 60_000;
      expect(await store.jobs.enqueue('jk-retry', { secret: 'token-def' })).toMatchObject({ queued: true, job: { state: 'queued', attempts: 0 } });
      // Not retryable: dead at once, with what it leaves to show.
      const c4 = (await store.jobs.claim(60_000))!;
      expect(await store.jobs.fail(c4, { errorKind: 'no_usable_images', retryable: false, backoffMs: 1000, holdMs: 60_000, detail: [{ kind: 'ungradable' }] })).toBe('dead');
      expect(await store.jobs.findByKey('jk-retry')).toMatchObject({ state: 'dead', errorKind: 'no_usable_images', detail: [{ kind: 'ungradable' }] });
      // A worker that dies on the last attempt: dead as worker_lost once its lease runs out.
      const { job: lost } = await store.jobs.enqueue('jk-lost', {}, { maxAttempts: 1 });
      await store.jobs.claim(1000);
      clock += 1001;
      expect(await store.jobs.claim(1000)).toBeUndefined();
      expect(await store.jobs.get(lost.id)).toMatchObject({ state: 'dead', errorKind: 'worker_lost' });
      const counts = await store.jobs.counts();
      expect(counts.dead).toBeGreaterThanOrEqual(2);
      expect(Object.keys(counts).sort()).toEqual(['dead', 'done', 'queued', 'running']);
    });

    it('jobs: oldest ready first; concurrent claims never hand one job out twice; finished jobs are swept after retention', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        ids.push((await store.jobs.enqueue(`jk-many-${i}`, { i })).job.id);
        clock += 1;
      }
      const first = await store.jobs.claim<{ i: number }>(60_000);
      expect(first?.payload).toEqual({ i: 0 });
      const got = await Promise.all(Array.from({ length: 8 }, () => store.jobs.claim(60_000)));
      const claimedIds = got.filter((j) => j !== undefined).map((j) => j!.id);
      expect(new Set(claimedIds).size).toBe(claimedIds.length);
      expect(claimedIds.sort()).toEqual(ids.slice(1).sort());
      for (const j of [first!, ...got.filter((x) => x !== undefined)]) await store.jobs.complete(j!, `an-${j!.id}`);
      clock += 31 * DAY;
      expect((await store.sweep({ batch: 1000 })).jobs).toBeGreaterThanOrEqual(6);
      expect(await store.jobs.get(ids[0]!)).toBeUndefined();
    });

    it('write-back records: claimed once, settled, retaken only after a refusal or failure', async () => {
      const rec = { key: 'idem-1', analysisId: 'an-1', action: 'approve' as const, profile: 'fhir-standard' };
      expect(await store.writeback.get('idem-1')).toBeUndefined();
      expect(await store.writeback.begin(rec)).toBe(true);
      expect(await store.writeback.begin(rec)).toBe(false); // pending: a second attempt must reconcile, not write
      expect(await store.writeback.get('idem-1')).toMatchObject({ ...rec, state: 'pending', resources: [], createdAt: clock, updatedAt: clock });
      clock += 1000;
      expect(await store.writeback.settle('idem-1', 'refused', [])).toBe(true);
      expect(await store.writeback.begin(rec)).toBe(true);
      expect(await store.writeback.settle('idem-1', 'done', ['DiagnosticReport/7', 'Provenance/8'])).toBe(true);
      expect(await store.writeback.begin(rec)).toBe(false);
      expect(await store.writeback.get('idem-1')).toMatchObject({ state: 'done', resources: ['DiagnosticReport/7', 'Provenance/8'], createdAt: clock - 1000, updatedAt: clock });
      expect(await store.writeback.settle('unknown', 'done', [])).toBe(false);
      await store.writeback.begin({ ...rec, key: 'idem-2', action: 'discard' });
      await store.writeback.begin({ ...rec, key: 'idem-3', analysisId: 'an-2' });
      expect((await store.writeback.forAnalysis('an-1')).map((r) => [r.key, r.action])).toEqual([['idem-1', 'approve'], ['idem-2', 'discard']]);
      expect(await store.writeback.forAnalysis('none')).toEqual([]);
    });

    it('write-back records: concurrent claims of one key give it once', async () => {
      const rec = { key: 'idem-race', analysisId: 'an-r', action: 'draft' as const, profile: 'epic' };
      const got = await Promise.all(Array.from({ length: 6 }, () => store.writeback.begin(rec)));
      expect(got.filter(Boolean)).toHaveLength(1);
      await store.writeback.settle('idem-race', 'failed', []);
      const again = await Promise.all(Array.from({ length: 6 }, () => store.writeback.begin(rec)));
      expect(again.filter(Boolean)).toHaveLength(1);
    });

    it('audit trail: appended, listed oldest first, per analysis and from a time; untouched by the sweep', async () => {
      const ev = (analysisId: string, outcome: string, extra: object = {}) => ({ at: clock, actor: 'Practitioner/p1', action: 'writeback.approve', analysisId, profile: 'oracle', fhirOrigin: 'https://ehr.example:443', outcome, resources: [] as string[], ...extra });
      const t0 = clock;
      await store.audit.append(ev('au-1', 'refused', { httpStatus: 422 }));
      await store.audit.append(ev('au-1', 'written', { httpStatus: 201, resources: ['DocumentReference/5'] }));
      clock += 5000;
      await store.audit.append(ev('au-2', 'nothing-to-write'));
      const all = await store.audit.list({ since: t0, limit: 10 });
      expect(all.map((e) => e.outcome)).toEqual(['refused', 'written', 'nothing-to-write']);
      expect(all[1]).toEqual(ev('au-1', 'written', { at: t0, httpStatus: 201, resources: ['DocumentReference/5'] }));
      expect(all[2]).not.toHaveProperty('httpStatus');
      expect((await store.audit.list({ since: t0, analysisId: 'au-1', limit: 10 })).map((e) => e.outcome)).toEqual(['refused', 'written']);
      expect((await store.audit.list({ since: t0 + 1, limit: 10 })).map((e) => e.analysisId)).toEqual(['au-2']);
      expect(await store.audit.list({ since: t0, limit: 1 })).toHaveLength(1);
      clock += 400 * DAY;
      await store.sweep({ batch: 1000 });
      expect(await store.audit.list({ since: t0, limit: 10 })).toHaveLength(3);
    });

    describe.skipIf(backend.name === 'memory')('durable', () => {
      it('jobs: two stores on one database (two replicas) claim each job exactly once; a queued job survives a reopen', async () => {
        const other = await open(url, keyFile, { now });
        try {
          const keys = Array.from({ length: 10 }, (_, i) => `jk-two-${i}`);
          // Both replicas enqueue the same work: one job per key.
          const enq = await Promise.all(keys.flatMap((k) => [store.jobs.enqueue(k, { k }), other.jobs.enqueue(k, { k })]));
          expect(new Set(enq.map((e) => e.job.id)).size).toBe(keys.length);
          expect(enq.filter((e) => e.queued)).toHaveLength(keys.length);
          const claims = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? other : store).jobs.claim<{ k: string }>(60_000)));
          const got = claims.filter((c) => c !== undefined).map((c) => c!.payload.k);
          expect(got.sort()).toEqual([...keys].sort());
          for (const c of claims) if (c) await store.jobs.complete(c, `an-${c.id}`);
        } finally {
          await other.close();
        }
        await store.jobs.enqueue('jk-survives', { still: 'here' });
        await store.close();
        store = await open(url, keyFile, { now });
        const survived = (await store.jobs.claim<{ still: string }>(60_000))!;
        expect(survived.payload).toEqual({ still: 'here' });
        await store.jobs.complete(survived, 'an-survived');
      });

      it('jobs: payloads (access tokens, clinical context) are sealed at rest and dropped once done', async () => {
        const { job } = await store.jobs.enqueue('jk-sealed', { token: 'eyJ-job-access-token', patient: 'PAT-JOB-1' });
        const dump = JSON.stringify(await backend.raw!(url, 'SELECT * FROM jobs'));
        expect(dump).not.toContain('eyJ-job-access-token');
        expect(dump).not.toContain('PAT-JOB-1');
        const c = (await store.jobs.claim<{ token: string }>(60_000))!;
        expect(c.id).toBe(job.id);
        expect(c.payload.token).toBe('eyJ-job-access-token');
        await store.jobs.complete(c, 'an-sealed');
        expect((await backend.raw!(url, 'SELECT payload FROM jobs'))[0]).toBeDefined();
        const row = (await backend.raw!(url, 'SELECT * FROM jobs')).find((r) => r.id === job.id)!;
        expect(row.payload).toBe('');
      });

      it('everything survives closing and reopening with the same key', async () => {
        await store.analyses.save({ id: 'd1', key: 'kd1', subject: 'ehr|Patient/d', references: ['dicom:9'], modelSha: 'm', startedAt: clock, finishedAt: clock, result: fakeResult('durable finding') });
        await store.feedback.record('svc', [{ card: 'dur', outcome: 'accepted', outcomeTimestamp: new Date(clock).toISOString() }]);
        await store.replay.checkAndRemember('iss\u0000before-restart', clock + 600_000);
        await store.keyed('smart-session').put('sess', { accessToken: 'secret-token-value' }, 600_000);
        await store.marks.set('src', 'mark-1');
        await store.writeback.begin({ key: 'idem-dur', analysisId: 'd1', action: 'draft', profile: 'epic' });
        await store.audit.append({ at: clock, actor: 'system', action: 'writeback.draft', analysisId: 'd1', profile: 'epic', fhirOrigin: 'https://ehr.example:443', outcome: 'failed', resources: [] });
        await store.close();
        store = await open(url, keyFile, { now });
        expect((await store.analyses.findByKey('kd1'))?.result.report.note.text).toBe('durable finding');
        expect((await store.analyses.latestForSubject('ehr|Patient/d', 3)).map((a) => a.id)).toEqual(['d1']);
        expect((await store.feedback.list({ limit: 100 })).some((f) => f.card === 'dur')).toBe(true);
        expect(await store.replay.checkAndRemember('iss\u0000before-restart', clock + 600_000)).toBe(false);
        expect(await store.keyed('smart-session').get('sess')).toEqual({ accessToken: 'secret-token-value' });
        expect(await store.marks.get('src')).toBe('mark-1');
        // An interrupted write is still claimed after a restart: the next attempt reconciles instead of writing twice.
        expect(await store.writeback.get('idem-dur')).toMatchObject({ state: 'pending', analysisId: 'd1' });
        expect(await store.writeback.begin({ key: 'idem-dur', analysisId: 'd1', action: 'draft', profile: 'epic' })).toBe(false);
        expect((await store.audit.list({ analysisId: 'd1', limit: 5 })).map((e) => e.outcome)).toEqual(['failed']);
      });

      it('PHI and tokens are sealed at rest; subjects are not stored in clear', async () => {
        await store.analyses.save({ id: 'enc', key: 'kenc', subject: 'https://ehr.example/fhir|Patient/PAT-4711', references: ['dicom:1.2.840.4711'], modelSha: 'm', startedAt: clock, finishedAt: clock, result: fakeResult('moderate NPDR right eye') });
        await store.feedback.record('svc', [{ card: 'enc-card', outcome: 'overridden', overrideReason: { userComment: 'seen by Dr Jones' }, outcomeTimestamp: new Date(clock).toISOString() }]);
        await store.keyed('smart-session').put('enc-session', { accessToken: 'eyJhbGciOi-access-token' }, 600_000);
        const dump = JSON.stringify([
          ...(await backend.raw!(url, 'SELECT * FROM analyses')),
          ...(await backend.raw!(url, 'SELECT * FROM feedback')),
          ...(await backend.raw!(url, 'SELECT * FROM keyed')),
        ]);
        for (const clear of ['NPDR', 'PAT-4711', '1.2.840.4711', 'Dr Jones', 'eyJhbGciOi', 'enc-session']) expect(dump).not.toContain(clear);
        expect(dump).toMatch(/v1\./);
      });

      it('a wrong data key stops the open with a clear message and changes nothing', async () => {
        const wrong = writeKeyFile(tempDir(), 'wrong.key');
        await expect(open(url, wrong, { now })).rejects.toThrow(/VOLMO_DATA_KEY_FILE: the data key \(fingerprint [0-9a-f]{8}\) is not the key the data in .* was written with/);
        expect((await store.analyses.findByKey('kd1'))?.id).toBe('d1');
      });

      it('migrations: recorded once, reopening applies nothing, two opening a fresh database at once apply once', async () => {
        const versions = async (u: string) => (await backend.raw!(u, 'SELECT version FROM schema_migrations')).map((r) => Number(r.version));
        expect(await versions(url)).toEqual(ALL_VERSIONS);
        const again = await open(url, keyFile, { now });
        await again.close();
        expect(await versions(url)).toEqual(ALL_VERSIONS);
        const freshUrl = await backend.fresh();
        const both = await Promise.all([open(freshUrl, keyFile, { now }), open(freshUrl, keyFile, { now })]);
        await Promise.all(both.map((s) => s.close()));
        expect(await versions(freshUrl)).toEqual(ALL_VERSIONS);
        expect(await backend.raw!(freshUrl, "SELECT name FROM store_meta WHERE name = 'key_check'")).toHaveLength(1);
      });
    });
  });
}

describe('store start-up errors', () => {
  it('an unreachable PostgreSQL is a configuration error naming the place, never the password', async () => {
    const srv = (await import('node:net')).createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as import('node:net').AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const keyFile = writeKeyFile(dir);
    const err = await open(`postgres://volmo:s3cret-pass@127.0.0.1:${port}/volmo`, keyFile, { connectTimeoutMs: 2000 }).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err).toMatchObject({ code: 'config_invalid' });
    expect(err!.message).toMatch(new RegExp(`VOLMO_DATABASE_URL: cannot use the database at postgres://127.0.0.1:${port}/volmo: ECONNREFUSED`));
    expect(err!.message).not.toContain('s3cret');
  });

  it('a data key file that is not 32 bytes is refused; a missing one is generated only when none was configured', async () => {
    const d = tempDir();
    const bad = join(d, 'bad.key');
    (await import('node:fs')).writeFileSync(bad, 'too short');
    await expect(open(`sqlite:${join(d, 'a.db')}`, bad)).rejects.toThrow(/VOLMO_DATA_KEY_FILE: .*bad\.key does not hold a 32-byte key/);
    await expect(open(`sqlite:${join(d, 'b.db')}`, join(d, 'absent.key'))).rejects.toThrow(/absent\.key does not exist/);
    const { openStore } = await import('../../src/store/open-store.js');
    const { silentLogger } = await import('../../src/log.js');
    const generated = await openStore({ databaseUrl: `sqlite:${join(d, 'c.db')}`, analysisRetentionDays: 30, profile: 'sandbox' }, silentLogger(), { sweepIntervalMs: 0 });
    await generated.close();
    expect(readFileSync(join(d, 'data.key'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    await expect(openStore({ databaseUrl: `sqlite:${join(d, 'd.db')}`, analysisRetentionDays: 30, profile: 'production' }, silentLogger())).rejects.toThrow(/VOLMO_DATA_KEY_FILE: production needs the data key/);
  });
});
