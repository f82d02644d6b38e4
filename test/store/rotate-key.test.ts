/**
 * `volmo store rotate-key` against SQLite (a temporary file) and the machine's PostgreSQL (a fresh schema per
 * run, dropped after): after the rotation every table is scanned and every sealed value must open with the new
 * key only (a sealed column the rotation missed, or a new one it does not know, fails here), no keyed hash under
 * the old key is left anywhere, the old key is refused at start-up and the new one sees everything. Refusals
 * change nothing; an error part-way rolls the whole rotation back. Also `volmo store backup` (SQLite).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { runStoreCli } from '../../src/store/cli.js';
import { openDriver } from '../../src/store/open-store.js';
import { rotateDataKey } from '../../src/store/rotate-key.js';
import { DataCipher, parseDataKey } from '../../src/store/data-key.js';
import type { VolmoStore } from '../../src/store/port.js';
import { dropSchema, fakeResult, newSchemaName, open, postgresAvailable, POSTGRES_URL, postgresUrl, tempDir, writeKeyFile } from './helpers.js';

type Row = Record<string, unknown>;

interface Backend {
  name: 'sqlite' | 'postgres';
  fresh(): Promise<string>;
  /** Runs SQL directly on the database (what someone with the database but not the key sees or does). */
  sql(url: string, text: string, params?: unknown[]): Promise<Row[]>;
  tables(url: string): Promise<string[]>;
}

const schemas: string[] = [];
const pgUp = await postgresAvailable();

const BACKENDS: Backend[] = [
  {
    name: 'sqlite',
    fresh: async () => `sqlite:${join(tempDir(), 'volmo.db')}`,
    sql: async (url, text, params = []) => {
      const db = new Database(url.slice('sqlite:'.length));
      try {
        const stmt = db.prepare(text.replace(/\$\d+/g, '?'));
        return stmt.reader ? (stmt.all(...params) as Row[]) : (stmt.run(...params), []);
      } finally {
        db.close();
      }
    },
    tables: async (url) => (await BACKENDS[0]!.sql(url, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")).map((r) => String(r.name)),
  },
  {
    name: 'postgres',
    fresh: async () => {
      const s = newSchemaName();
      schemas.push(s);
      return postgresUrl(s);
    },
    sql: async (url, text, params = []) => {
      const schema = new URL(url).searchParams.get('schema')!;
      const client = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
      await client.connect();
      try {
        return (await client.query(text, params)).rows as Row[];
      } finally {
        await client.end();
      }
    },
    tables: async (url) =>
      (await BACKENDS[1]!.sql(url, 'SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [new URL(url).searchParams.get('schema')])).map((r) => String(r.table_name)),
  },
];

afterAll(async () => {
  for (const s of schemas) await dropSchema(s);
});

const keyOf = (file: string) => parseDataKey(readFileSync(file))!;
const SEALED_RE = /^v1\.[A-Za-z0-9_-]{20,}$/;

/**
 * Every sealed column this test knows, with the additional data its values are sealed with (written here from
 * sql-store.ts, independently of rotate-key.ts). A sealed value in any other column fails the scan.
 */
const SEALED: Record<string, (r: Row) => string> = {
  'analyses.payload': (r) => `analysis:${String(r.id)}`,
  'feedback.payload': (r) => `feedback:${String(r.service)}|${String(r.card)}|${String(r.outcome)}`,
  'keyed.value': (r) => `keyed:${String(r.ns)}:${String(r.key_hash)}`,
  'jobs.payload': (r) => `job:${String(r.id)}`,
  'store_meta.value': () => 'volmo:key-check',
};

const SUBJECTS = ['Patient/rot-1', 'Patient/rot-2'];
const KEYED: [ns: 'smart-launch' | 'smart-session' | 'smart-browser', key: string, value: unknown][] = [
  ['smart-launch', 'state-abc', { verifier: 'pkce-verifier-1', nonce: 'n-1' }],
  ['smart-session', 'session-xyz', { accessToken: 'ehr-access-token-1', refreshToken: 'ehr-refresh-1', patient: 'rot-1' }],
  ['smart-browser', 'browser-123', { created: 1 }],
];

interface Fixture {
  analysisIds: string[];
  deadJobId: string;
  queuedJobKey: string;
}

/** Puts something in every table through the store (old key), plus one launch record of the format before the envelope. */
async function populate(store: VolmoStore, legacy: { cipher: DataCipher; backend: Backend; url: string }): Promise<Fixture> {
  const t = Date.now();
  const analysisIds: string[] = [];
  for (let i = 0; i < 3; i++) {
    const id = `an-${i}`;
    analysisIds.push(id);
    await store.analyses.save({ id, key: `key-${i}`, subject: SUBJECTS[i % 2]!, references: [`Media/${i}`], modelSha: 'sha', startedAt: t - 1000 + i, finishedAt: t + i, result: fakeResult(`note ${i}`) });
  }
  await store.analyses.update('an-0', fakeResult('note 0, second stage'));
  await store.feedback.record('volmo-dr', [
    { card: 'card-1', outcome: 'overridden', overrideReason: { userComment: 'patient declined' }, outcomeTimestamp: new Date(t).toISOString() },
    { card: 'card-2', outcome: 'accepted', outcomeTimestamp: new Date(t).toISOString() },
  ]);
  for (const [ns, key, value] of KEYED) expect(await store.keyed(ns).put(key, value, 3_600_000)).toBe(true);
  // Queued (sealed payload), dead with detail (sealed), done (payload dropped).
  await store.jobs.enqueue('job-done', { token: 'fhir-token-a' });
  const done = (await store.jobs.claim<{ token: string }>(60_000))!;
  await store.jobs.complete(done, 'an-1');
  await store.jobs.enqueue('job-dead', { token: 'fhir-token-b' });
  const dead = (await store.jobs.claim(60_000))!;
  await store.jobs.fail(dead, { errorKind: 'no_usable_images', retryable: false, backoffMs: 1000, holdMs: 60_000, detail: { problems: ['blurred'] } });
  await store.jobs.enqueue('job-queued', { token: 'fhir-token-c' });
  await store.writeback.begin({ key: 'wb-1', analysisId: 'an-0', action: 'draft', profile: 'fhir-standard' });
  await store.writeback.settle('wb-1', 'done', ['DiagnosticReport/1']);
  await store.audit.append({ at: t, actor: 'Practitioner/1', action: 'writeback.draft', analysisId: 'an-0', profile: 'fhir-standard', fhirOrigin: 'http://127.0.0.1:1', outcome: 'written', httpStatus: 201, resources: ['DiagnosticReport/1'] });
  await store.marks.set('watch-1', 'mark-1');
  expect(await store.replay.checkAndRemember('iss|jti-1', t + 3_600_000)).toBe(true);
  // A session record as stored before lookup keys were sealed with the value (the bare value).
  const hash = legacy.cipher.mac('smart-session:legacy-session');
  await legacy.backend.sql(legacy.url, 'INSERT INTO keyed (ns, key_hash, value, expires_at) VALUES ($1, $2, $3, $4)', [
    'smart-session', hash, legacy.cipher.seal(JSON.stringify({ accessToken: 'old-format' }), `keyed:smart-session:${hash}`), t + 3_600_000,
  ]);
  return { analysisIds, deadJobId: dead.id, queuedJobKey: 'job-queued' };
}

async function rotate(url: string, currentFile: string | undefined, newFile: string | undefined, now?: () => number): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await runStoreCli(['rotate-key', ...(newFile === undefined ? [] : ['--new-key-file', newFile])], { databaseUrl: url, dataKeyFile: currentFile, profile: 'sandbox' }, silentLogger(), { out: (l) => lines.push(l), now });
  return { code, out: lines.join('\n') };
}

for (const backend of BACKENDS) {
  describe.skipIf(backend.name === 'postgres' && !pgUp)(`volmo store rotate-key: ${backend.name}`, () => {
    it('re-seals every sealed column and recomputes every keyed hash in one go; the old key is refused, the new one sees everything', async () => {
      const url = await backend.fresh();
      const dir = tempDir();
      const oldFile = writeKeyFile(dir, 'old.key');
      const newFile = writeKeyFile(dir, 'new.key');
      const oldC = new DataCipher(keyOf(oldFile));
      const newC = new DataCipher(keyOf(newFile));
      const store = await open(url, oldFile);
      const fx = await populate(store, { cipher: oldC, backend, url });
      await store.close();

      const { code, out } = await rotate(url, oldFile, newFile);
      expect(code).toBe(0);
      expect(out).toContain(`${oldC.fingerprint} -> ${newC.fingerprint}`);
      expect(out).toMatch(/re-sealed 3 analyses .* 2 feedback records, 3 launch\/session records .* 2 job payloads/);
      expect(out).toMatch(/removed 1 launch\/session records written before/);
      expect(out).toContain(`VOLMO_DATA_KEY_FILE=${newFile}`);
      for (const secret of ['ehr-access-token-1', 'fhir-token', 'patient declined', 'Patient/rot']) expect(out).not.toContain(secret);

      // The scan: every table, every column, every value.
      const oldMacs = new Set([...SUBJECTS.map((s) => oldC.mac(s)), ...KEYED.map(([ns, k]) => oldC.mac(`${ns}:${k}`)), oldC.mac('smart-session:legacy-session')]);
      const found = new Map<string, number>();
      const tables = await backend.tables(url);
      expect(tables).toEqual(expect.arrayContaining(['analyses', 'feedback', 'keyed', 'jobs', 'store_meta', 'writeback', 'audit_log', 'replay', 'watcher_marks']));
      for (const table of tables) {
        for (const row of await backend.sql(url, `SELECT * FROM ${table}`)) {
          for (const [col, v] of Object.entries(row)) {
            if (typeof v !== 'string') continue;
            expect(oldMacs.has(v), `${table}.${col} still holds a keyed hash under the old key`).toBe(false);
            if (!SEALED_RE.test(v)) continue;
            const where = `${table}.${col}`;
            const aad = SEALED[where];
            expect(aad, `${where} holds a sealed value this test (and perhaps rotate-key.ts) does not know`).toBeDefined();
            expect(() => newC.open(v, aad!(row)), `${where} does not open with the new key`).not.toThrow();
            expect(() => oldC.open(v, aad!(row)), `${where} still opens with the old key`).toThrow();
            found.set(where, (found.get(where) ?? 0) + 1);
            if (where === 'analyses.payload') expect(row.subject_mac).toBe(newC.mac((JSON.parse(newC.open(v, aad!(row))) as { subject: string }).subject));
            if (where === 'keyed.value') expect(row.key_hash).toBe(newC.mac(`${String(row.ns)}:${(JSON.parse(newC.open(v, aad!(row))) as { lookup: string }).lookup}`));
          }
        }
      }
      // Every known sealed column was exercised (3 analyses, 2 feedback, 3 keyed, 2 jobs: queued + dead detail, the key check).
      expect(Object.fromEntries(found)).toEqual({ 'analyses.payload': 3, 'feedback.payload': 2, 'keyed.value': 3, 'jobs.payload': 2, 'store_meta.value': 1 });

      await expect(open(url, oldFile)).rejects.toThrow(new RegExp(`the data key \\(fingerprint ${oldC.fingerprint}\\) is not the key the data in .* was written with`));

      const after = await open(url, newFile);
      try {
        expect((await after.analyses.findByKey('key-0'))?.result).toEqual(fakeResult('note 0, second stage'));
        expect((await after.analyses.findById('an-2'))?.subject).toBe('Patient/rot-1');
        expect((await after.analyses.latestForSubject('Patient/rot-1', 10)).map((a) => a.id).sort()).toEqual(['an-0', 'an-2']);
        expect((await after.analyses.latestForSubject('Patient/rot-2', 10)).map((a) => a.id)).toEqual(['an-1']);
        const fb = await after.feedback.list({ limit: 10 });
        expect(fb.map((f) => [f.card, f.overrideReason?.userComment])).toEqual([['card-1', 'patient declined'], ['card-2', undefined]]);
        for (const [ns, key, value] of KEYED) expect(await after.keyed(ns).get(key)).toEqual(value);
        expect(await after.keyed('smart-session').get('legacy-session')).toBeUndefined();
        expect(await after.keyed('smart-launch').take('state-abc')).toEqual(KEYED[0]![2]);
        expect((await after.jobs.get(fx.deadJobId))?.detail).toEqual({ problems: ['blurred'] });
        const claimed = await after.jobs.claim<{ token: string }>(60_000);
        expect(claimed?.key).toBe(fx.queuedJobKey);
        expect(claimed?.payload).toEqual({ token: 'fhir-token-c' });
        expect((await after.writeback.get('wb-1'))?.resources).toEqual(['DiagnosticReport/1']);
        expect(await after.audit.list({ limit: 10 })).toHaveLength(1);
        expect(await after.marks.get('watch-1')).toBe('mark-1');
        expect(await after.replay.checkAndRemember('iss|jti-1', Date.now() + 3_600_000)).toBe(false);
        // New writes under the new key are found as well.
        await after.analyses.save({ id: 'an-new', key: 'key-new', subject: 'Patient/rot-2', references: [], modelSha: 'sha', startedAt: Date.now(), finishedAt: Date.now(), result: fakeResult('new') });
        expect((await after.analyses.latestForSubject('Patient/rot-2', 10)).map((a) => a.id).sort()).toEqual(['an-1', 'an-new']);
      } finally {
        await after.close();
      }
      // Rotating again from the old key: the clear message that it was done.
      const again = await rotate(url, oldFile, newFile).catch((e: Error) => e);
      expect((again as Error).message).toMatch(/already under the new key .*rotation was done/);
    });

    it('reads the tables page by page (a page of one row here) and counts what it re-sealed', async () => {
      const url = await backend.fresh();
      const dir = tempDir();
      const oldFile = writeKeyFile(dir, 'old.key');
      const newFile = writeKeyFile(dir, 'new.key');
      const oldC = new DataCipher(keyOf(oldFile));
      const store = await open(url, oldFile);
      await populate(store, { cipher: oldC, backend, url });
      await store.close();
      const db = await openDriver(url, silentLogger());
      try {
        expect(await rotateDataKey(db, oldC, new DataCipher(keyOf(newFile)), { batch: 1 })).toMatchObject({ analyses: 3, feedback: 2, keyed: 3, keyedDropped: 1, jobs: 2 });
      } finally {
        await db.close();
      }
      const s = await open(url, newFile);
      try {
        expect((await s.analyses.latestForSubject('Patient/rot-1', 10)).map((a) => a.id).sort()).toEqual(['an-0', 'an-2']);
        expect(await s.feedback.list({ limit: 10 })).toHaveLength(2);
      } finally {
        await s.close();
      }
    });

    it('a failure part-way rolls everything back: the old key still opens everything, the new one is refused', async () => {
      const url = await backend.fresh();
      const dir = tempDir();
      const oldFile = writeKeyFile(dir, 'old.key');
      const newFile = writeKeyFile(dir, 'new.key');
      const store = await open(url, oldFile);
      const fx = await populate(store, { cipher: new DataCipher(keyOf(oldFile)), backend, url });
      await store.close();
      // The queued job's payload is damaged: the rotation reaches it after the analyses, feedback and keyed rows.
      const job = (await backend.sql(url, 'SELECT id FROM jobs WHERE job_key = $1', [fx.queuedJobKey]))[0]!;
      const good = (await backend.sql(url, 'SELECT payload FROM jobs WHERE id = $1', [job.id]))[0]!.payload as string;
      await backend.sql(url, 'UPDATE jobs SET payload = $1 WHERE id = $2', [`v1.${Buffer.alloc(40, 7).toString('base64url')}`, job.id]);
      const err = await rotate(url, oldFile, newFile).catch((e: Error) => e);
      expect((err as Error).message).toMatch(new RegExp(`jobs row ${String(job.id)}: its sealed value does not open with the current key .*rolled back and nothing was changed`));
      await backend.sql(url, 'UPDATE jobs SET payload = $1 WHERE id = $2', [good, job.id]);
      await expect(open(url, newFile)).rejects.toThrow(/is not the key the data in/);
      const s = await open(url, oldFile);
      try {
        expect((await s.analyses.findByKey('key-1'))?.result).toEqual(fakeResult('note 1'));
        expect((await s.analyses.latestForSubject('Patient/rot-1', 10))).toHaveLength(2);
        expect(await s.keyed('smart-session').get('session-xyz')).toEqual(KEYED[1]![2]);
        expect(await s.keyed('smart-session').get('legacy-session')).toEqual({ accessToken: 'old-format' });
        expect(await s.feedback.list({ limit: 10 })).toHaveLength(2);
      } finally {
        await s.close();
      }
    });

    it('`volmo store rotate-key` SIGKILLed inside its transaction: the old key still opens everything, the new one is refused; a second run completes', async () => {
      const url = await backend.fresh();
      const dir = tempDir();
      const oldFile = writeKeyFile(dir, 'old.key');
      const newFile = writeKeyFile(dir, 'new.key');
      const oldC = new DataCipher(keyOf(oldFile));
      const store = await open(url, oldFile);
      await populate(store, { cipher: oldC, backend, url });
      await store.close();
      // Enough rows that the rotation runs for seconds (written directly, sealed as the store seals them).
      const N = 4000;
      const filler = 'x'.repeat(10_000);
      for (let from = 0; from < N; from += 500) {
        const values: unknown[] = [];
        const tuples: string[] = [];
        for (let i = from; i < Math.min(N, from + 500); i++) {
          const id = `bulk-${String(i).padStart(5, '0')}`;
          const subject = `Patient/bulk-${i % 50}`;
          const payload = oldC.seal(JSON.stringify({ subject, references: [], result: fakeResult(filler) }), `analysis:${id}`);
          const b = values.length;
          tuples.push(`($${b + 1}, $${b + 2}, $${b + 3}, 'm', 1, 1, $${b + 4}, $${b + 5})`);
          values.push(id, `bulk-key-${i}`, oldC.mac(subject), Date.now() + 86_400_000, payload);
        }
        await backend.sql(url, `INSERT INTO analyses (id, analysis_key, subject_mac, model_sha, started_at, finished_at, expires_at, payload) VALUES ${tuples.join(', ')}`, values);
      }
      const dbFile = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : '';
      if (dbFile) await backend.sql(url, 'PRAGMA wal_checkpoint(TRUNCATE)');
      const { spawn } = await import('node:child_process');
      const { statSync } = await import('node:fs');
      const child = spawn(process.execPath, ['bin/volmo.js', 'store', 'rotate-key', '--new-key-file', newFile], {
        env: { PATH: process.env.PATH, VOLMO_DATABASE_URL: url, VOLMO_DATA_KEY_FILE: oldFile, VOLMO_LOG_LEVEL: 'silent' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, sig) => r(sig)));
      // Inside the transaction, with writes under way: SQLite's WAL has grown by megabytes of uncommitted pages;
      // PostgreSQL: the rotation holds its exclusive lock on this schema's analyses table (then 500 ms more).
      const inside = async () => {
        if (dbFile) {
          try {
            return statSync(`${dbFile}-wal`).size > 4 * 2 ** 20;
          } catch {
            return false;
          }
        }
        const schema = new URL(url).searchParams.get('schema');
        const rows = await backend.sql(url, `SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = 'analyses' AND l.mode = 'ExclusiveLock' AND l.granted`, [schema]);
        return rows.length > 0;
      };
      const deadline = Date.now() + 60_000;
      while (!(await inside())) {
        expect(out, 'the rotation finished before it could be killed').not.toMatch(/done:/);
        expect(Date.now() < deadline, `no sign of the rotation's transaction within 60 s: ${out}`).toBe(true);
        await new Promise((r) => setTimeout(r, 20));
      }
      if (!dbFile) await new Promise((r) => setTimeout(r, 500));
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      expect(out).toMatch(/rotating the data key/);
      expect(out).not.toMatch(/done:/);

      await expect(open(url, newFile)).rejects.toThrow(/is not the key the data in/);
      const s = await open(url, oldFile);
      try {
        expect((await s.analyses.findByKey('key-0'))?.result).toEqual(fakeResult('note 0, second stage'));
        expect((await s.analyses.findByKey(`bulk-key-${N - 1}`))?.subject).toBe(`Patient/bulk-${(N - 1) % 50}`);
        expect(await s.analyses.latestForSubject('Patient/bulk-7', 1000)).toHaveLength(N / 50);
        expect(await s.keyed('smart-session').get('session-xyz')).toEqual(KEYED[1]![2]);
      } finally {
        await s.close();
      }
      const { code } = await rotate(url, oldFile, newFile);
      expect(code).toBe(0);
      const after = await open(url, newFile);
      try {
        expect(await after.analyses.latestForSubject('Patient/bulk-7', 1000)).toHaveLength(N / 50);
      } finally {
        await after.close();
      }
    }, 180_000);

    it('refuses while a volmo-cds process uses the database; a stale heartbeat is ignored and removed', async () => {
      const url = await backend.fresh();
      const dir = tempDir();
      const oldFile = writeKeyFile(dir, 'old.key');
      const newFile = writeKeyFile(dir, 'new.key');
      const running = await open(url, oldFile);
      await running.analyses.save({ id: 'a', key: 'k', subject: 'Patient/x', references: [], modelSha: 's', startedAt: 1, finishedAt: Date.now(), result: fakeResult('x') });
      const err = await rotate(url, oldFile, newFile).catch((e: Error) => e);
      expect((err as Error).message).toMatch(/1 volmo-cds process\(es\) using .* wrote a heartbeat within the last 90 s .*stop every replica.*Nothing was changed/);
      expect((await running.analyses.findByKey('k'))?.result).toEqual(fakeResult('x'));
      // The sweep removes heartbeats older than a day (killed processes, restored backups), never a live one.
      await backend.sql(url, 'INSERT INTO store_meta (name, value) VALUES ($1, $2)', ['replica:ancient', JSON.stringify({ at: Date.now() - 2 * 86_400_000 })]);
      await running.sweep();
      expect((await backend.sql(url, "SELECT name FROM store_meta WHERE name LIKE 'replica:%'")).map((r) => r.name)).toEqual([expect.stringMatching(/^replica:[0-9a-f-]{36}$/)]);
      await running.close();
      // A process killed without closing leaves its heartbeat: ignored once 90 s old.
      await backend.sql(url, 'INSERT INTO store_meta (name, value) VALUES ($1, $2)', ['replica:killed', JSON.stringify({ at: Date.now() - 60_000, pid: 1 })]);
      await expect(rotate(url, oldFile, newFile)).rejects.toThrow(/wrote a heartbeat within the last 90 s \(the latest 60 s ago\)/);
      const { code, out } = await rotate(url, oldFile, newFile, () => Date.now() + 31_000);
      expect(code).toBe(0);
      expect(out).toMatch(/removed 1 stale process heartbeat/);
      expect(await backend.sql(url, "SELECT name FROM store_meta WHERE name LIKE 'replica:%'")).toEqual([]);
    });

    it('a process still running when the key was rotated (its heartbeat stale) stops sealing anything under the old key', async () => {
      const url = await backend.fresh();
      const dir = tempDir();
      const oldFile = writeKeyFile(dir, 'old.key');
      const newFile = writeKeyFile(dir, 'new.key');
      const stale = await open(url, oldFile, { heartbeatIntervalMs: 100 });
      try {
        await stale.analyses.save({ id: 'a', key: 'k', subject: 'Patient/x', references: [], modelSha: 's', startedAt: 1, finishedAt: Date.now(), result: fakeResult('before') });
        // As if its heartbeat had stopped 91 s before the rotation.
        const { code } = await rotate(url, oldFile, newFile, () => Date.now() + 91_000);
        expect(code).toBe(0);
        await new Promise((r) => setTimeout(r, 400)); // a few heartbeats
        const save = stale.analyses.save({ id: 'b', key: 'k2', subject: 'Patient/x', references: [], modelSha: 's', startedAt: 2, finishedAt: Date.now(), result: fakeResult('after') });
        await expect(save).rejects.toMatchObject({ code: 'store_unavailable', message: expect.stringMatching(/the data key was rotated while this process was running: restart it/) });
        await expect(stale.keyed('smart-session').put('s', { t: 1 }, 60_000)).rejects.toThrow(/data key was rotated/);
        await expect(stale.jobs.enqueue('j', { t: 1 })).rejects.toThrow(/data key was rotated/);
        await expect(stale.feedback.record('svc', [{ card: 'c', outcome: 'accepted', outcomeTimestamp: new Date().toISOString() }])).rejects.toThrow(/data key was rotated/);
      } finally {
        await stale.close();
      }
      const fresh = await open(url, newFile);
      try {
        expect((await fresh.analyses.findByKey('k'))?.result).toEqual(fakeResult('before'));
        expect(await fresh.analyses.findByKey('k2')).toBeUndefined();
        expect(await backend.sql(url, 'SELECT id FROM jobs')).toEqual([]);
      } finally {
        await fresh.close();
      }
    });
  });
}

describe('volmo store rotate-key: refusals (nothing changed)', () => {
  it('new key file missing, not 32 bytes, the same key, a wrong current key, no flag, memory:, no database', async () => {
    const url = `sqlite:${join(tempDir(), 'volmo.db')}`;
    const dir = tempDir();
    const oldFile = writeKeyFile(dir, 'old.key');
    const store = await open(url, oldFile);
    await store.analyses.save({ id: 'a', key: 'k', subject: 'Patient/x', references: [], modelSha: 's', startedAt: 1, finishedAt: Date.now(), result: fakeResult('kept') });
    await store.close();
    const short = join(dir, 'short.key');
    writeFileSync(short, 'abcdef\n');
    const copy = join(dir, 'copy.key');
    writeFileSync(copy, readFileSync(oldFile));
    const other = writeKeyFile(dir, 'other.key');
    const fp = (f: string) => new DataCipher(keyOf(f)).fingerprint;

    await expect(rotate(url, oldFile, join(dir, 'absent.key'))).rejects.toThrow(/--new-key-file: .*absent\.key does not exist \(create one: openssl rand -hex 32/);
    await expect(rotate(url, oldFile, short)).rejects.toThrow(/--new-key-file: .*short\.key does not hold a 32-byte key/);
    await expect(rotate(url, oldFile, copy)).rejects.toThrow(new RegExp(`the new key is the current key \\(fingerprint ${fp(oldFile)}\\)`));
    await expect(rotate(url, other, writeKeyFile(dir, 'n2.key'))).rejects.toMatchObject({ code: 'config_invalid', message: expect.stringMatching(new RegExp(`VOLMO_DATA_KEY_FILE: the data key \\(fingerprint ${fp(other)}\\) is not the key the data in sqlite:.* was written with; rotate from that key`)) });
    await expect(rotate(url, join(dir, 'nope.key'), other)).rejects.toThrow(/VOLMO_DATA_KEY_FILE: .*nope\.key does not exist/);
    await expect(rotate(url, oldFile, undefined)).rejects.toThrow(/rotate-key needs --new-key-file <path>/);
    await expect(rotate('memory:', oldFile, other)).rejects.toThrow(/memory: keeps nothing at rest and seals nothing: there is no data key to rotate/);
    await expect(rotate(`sqlite:${join(tempDir(), 'absent.db')}`, oldFile, other)).rejects.toThrow(/absent\.db does not exist \(nothing to rotate\)/);

    const s = await open(url, oldFile);
    expect((await s.analyses.findByKey('k'))?.result).toEqual(fakeResult('kept'));
    await s.close();
  });

  it('through bin/volmo.js: a refusal exits 78 with the message', async () => {
    const { spawnSync } = await import('node:child_process');
    const dir = tempDir();
    const url = `sqlite:${join(dir, 'volmo.db')}`;
    const oldFile = writeKeyFile(dir, 'old.key');
    await (await open(url, oldFile)).close();
    const r = spawnSync(process.execPath, ['bin/volmo.js', 'store', 'rotate-key', '--new-key-file', oldFile], {
      env: { PATH: process.env.PATH, VOLMO_DATABASE_URL: url, VOLMO_DATA_KEY_FILE: oldFile, VOLMO_LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toMatch(/the new key is the current key/);
    expect(r.status).toBe(78);
  }, 90_000);
});

describe('volmo store backup (SQLite)', () => {
  it('copies a database in use; the copy opens with the same key only; refuses an existing file and PostgreSQL', async () => {
    const dir = tempDir();
    const url = `sqlite:${join(dir, 'volmo.db')}`;
    const keyFile = writeKeyFile(dir, 'data.key');
    const store = await open(url, keyFile);
    await store.analyses.save({ id: 'a', key: 'k', subject: 'Patient/x', references: [], modelSha: 's', startedAt: 1, finishedAt: Date.now(), result: fakeResult('backed up') });
    const dest = join(dir, 'backup.db');
    const lines: string[] = [];
    const cli = (args: string[], databaseUrl = url) => runStoreCli(args, { databaseUrl, dataKeyFile: keyFile, profile: 'sandbox' }, silentLogger(), { out: (l) => lines.push(l) });
    expect(await cli(['backup', dest])).toBe(0); // while the store is open (online)
    await store.analyses.save({ id: 'b', key: 'k2', subject: 'Patient/x', references: [], modelSha: 's', startedAt: 2, finishedAt: Date.now(), result: fakeResult('after') });
    await store.close();
    expect(lines.join('\n')).toMatch(/The data key is NOT in it/);
    expect(lines.join('\n')).toContain(`the copy needs the key with fingerprint ${new DataCipher(keyOf(keyFile)).fingerprint}`);
    await expect(cli(['backup', dest])).rejects.toThrow(/backup\.db exists already/);
    await expect(cli(['backup', join(dir, 'x.db')], postgresUrl('volmo_none'))).rejects.toThrow(/for PostgreSQL use pg_dump/);
    await expect(cli(['backup'])).rejects.toThrow(/backup needs a destination file/);

    await expect(open(`sqlite:${dest}`, writeKeyFile(dir, 'other.key'))).rejects.toThrow(/is not the key the data in/);
    const restored = await open(`sqlite:${dest}`, keyFile);
    try {
      expect((await restored.analyses.findByKey('k'))?.result).toEqual(fakeResult('backed up'));
      expect(await restored.analyses.findByKey('k2')).toBeUndefined();
    } finally {
      await restored.close();
    }
  });
});

const pgDump = (await import('node:child_process')).spawnSync('pg_dump', ['--version'], { encoding: 'utf8' });
describe.skipIf(!pgUp || pgDump.status !== 0)('PostgreSQL backup and restore with pg_dump / pg_restore (the procedure in docs/deployment.md)', () => {
  it('a schema dumped, lost and restored opens with the same key and holds the data; another key is refused', async () => {
    const { spawnSync } = await import('node:child_process');
    const schema = newSchemaName();
    schemas.push(schema);
    const url = postgresUrl(schema);
    const dir = tempDir();
    const keyFile = writeKeyFile(dir, 'data.key');
    const store = await open(url, keyFile);
    await store.analyses.save({ id: 'a', key: 'k', subject: 'Patient/x', references: [], modelSha: 's', startedAt: 1, finishedAt: Date.now(), result: fakeResult('dumped') });
    await store.keyed('smart-session').put('sess', { accessToken: 't' }, 3_600_000);
    const dump = join(dir, 'volmo.dump');
    const d = spawnSync('pg_dump', ['--format=custom', `--schema=${schema}`, `--file=${dump}`, POSTGRES_URL], { encoding: 'utf8', timeout: 60_000 });
    expect(d.stderr).toBe('');
    expect(d.status).toBe(0);
    await store.close();
    await dropSchema(schema);
    const r = spawnSync('pg_restore', [`--dbname=${POSTGRES_URL}`, dump], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    await expect(open(url, writeKeyFile(dir, 'other.key'))).rejects.toThrow(/is not the key the data in/);
    const restored = await open(url, keyFile);
    try {
      expect((await restored.analyses.findByKey('k'))?.result).toEqual(fakeResult('dumped'));
      expect((await restored.analyses.latestForSubject('Patient/x', 5)).map((a) => a.id)).toEqual(['a']);
      expect(await restored.keyed('smart-session').get('sess')).toEqual({ accessToken: 't' });
    } finally {
      await restored.close();
    }
  });
});
