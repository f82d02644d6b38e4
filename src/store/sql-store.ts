/**
 * The durable store over SQLite or PostgreSQL (sql-driver.ts): one implementation, the same SQL for both.
 * Opening it applies the migrations and checks the data key against the key check value, in one exclusive
 * transaction. Sensitive values are sealed (data-key.ts) with the row's identity as additional data;
 * patient subjects appear only as keyed hashes. A periodic sweep deletes what is past retention, a bounded
 * number of rows per table and round.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { AnalysisResult } from '../analysis/analyse.js';
import type { ReplayCache } from '../cds/replay-cache.js';
import type { FeedbackItem, FeedbackSink, StoredFeedback } from '../cds/types.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MarkStore } from '../watcher/image-watcher.js';
import type { KeyedStore } from '../../launch/ttl-store.js';
import { DataCipher } from './data-key.js';
import { applyMigrations } from './migrations.js';
import { HEARTBEAT_PREFIX, heartbeatAt, isKeyedEnvelope, keyedEnvelope } from './rotate-key.js';
import { type AnalysisStore, type AuditEvent, type AuditTrail, backoffFor, type ClaimedJob, DEFAULT_JOB_MAX_ATTEMPTS, JOB_STATES, type JobInfo, type JobQueue, type JobState, type KeyedNamespace, MAX_KEYED_ENTRIES, type RetentionPolicy, type StoredAnalysis, type SweepResult, type VolmoStore, type WritebackAction, type WritebackRecord, type WritebackState, type WritebackStore } from './port.js';
import type { SqlDriver } from './sql-driver.js';

export interface SqlStoreOptions {
  cipher: DataCipher;
  retention: RetentionPolicy;
  log: Logger;
  now?: () => number;
  /** How often the retention sweep runs (default 10 minutes; 0: never, tests call sweep()). */
  sweepIntervalMs?: number;
  /** Rows per table one sweep round deletes at most (default 1000). */
  sweepBatch?: number;
  /**
   * How often this process renews its heartbeat row in store_meta (default 30 s; 0: only the one written at
   * open). `volmo store rotate-key` refuses while a heartbeat is fresh: a running process would keep writing
   * under the old key.
   */
  heartbeatIntervalMs?: number;
}

/** JSON for storage; refuses image bytes (an analysis keeps image references, never pixels). */
export function storableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) throw new Error('refusing to store binary data (image bytes are never stored)');
    return v;
  });
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

interface AnalysisRow {
  id: string;
  analysis_key: string;
  model_sha: string;
  started_at: number | string;
  finished_at: number | string;
  payload: string;
}

interface JobRow {
  id: string;
  job_key: string;
  state: JobState;
  attempts: number | string;
  max_attempts: number | string;
  run_at: number | string;
  lease_until: number | string | null;
  created_at: number | string;
  updated_at: number | string;
  analysis_id: string | null;
  error_kind: string | null;
  payload: string;
}

interface AnalysisPayload {
  subject: string;
  references: string[];
  result: AnalysisResult;
}

export class SqlStore implements VolmoStore {
  readonly durable = true;
  readonly kind: 'sqlite' | 'postgres';
  readonly analyses: AnalysisStore;
  readonly feedback: FeedbackSink;
  readonly replay: ReplayCache;
  readonly marks: MarkStore;
  readonly writeback: WritebackStore;
  readonly audit: AuditTrail;
  readonly jobs: JobQueue;
  private readonly now: () => number;
  private timer: ReturnType<typeof setInterval> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private readonly heartbeatName = `${HEARTBEAT_PREFIX}${randomUUID()}`;

  private constructor(
    private readonly db: SqlDriver,
    private readonly opts: SqlStoreOptions,
  ) {
    this.kind = db.dialect;
    this.now = opts.now ?? Date.now;
    this.analyses = this.analysisStore();
    this.feedback = this.feedbackSink();
    this.replay = this.replayCache();
    this.marks = this.markStore();
    this.writeback = this.writebackStore();
    this.audit = this.auditTrail();
    this.jobs = this.jobQueue();
  }

  /** Applies migrations and checks the data key (AppError('config_invalid') on a wrong key); closes the driver on failure. */
  static async open(db: SqlDriver, opts: SqlStoreOptions): Promise<SqlStore> {
    try {
      const applied = await db.transaction(async (tx) => {
        const done = await applyMigrations(tx, undefined, opts.now);
        const { rows } = await tx.query<{ value: string }>('SELECT value FROM store_meta WHERE name = $1', ['key_check']);
        if (rows[0]) {
          if (!opts.cipher.matchesKeyCheck(rows[0].value)) {
            throw new AppError(
              'config_invalid',
              `VOLMO_DATA_KEY_FILE: the data key (fingerprint ${opts.cipher.fingerprint}) is not the key the data in ${db.description} was written with; start with that key (nothing was read or changed)`,
            );
          }
        } else {
          await tx.query('INSERT INTO store_meta (name, value) VALUES ($1, $2)', ['key_check', opts.cipher.keyCheckValue()]);
        }
        return done;
      }, { exclusive: true });
      const store = new SqlStore(db, opts);
      opts.log.info({ store: db.description, migrationsApplied: applied, dataKey: opts.cipher.fingerprint }, 'store opened');
      const every = opts.sweepIntervalMs ?? 10 * 60_000;
      if (every > 0) {
        store.timer = setInterval(() => {
          store.sweep().then(
            (r) => { if (r.analyses + r.replay + r.keyed + r.jobs > 0) opts.log.info({ deleted: r }, 'store retention sweep'); },
            (e: unknown) => opts.log.warn({ code: (e as { code?: string }).code }, 'store retention sweep failed'),
          );
        }, every);
        store.timer.unref();
      }
      await store.heartbeat();
      const beat = opts.heartbeatIntervalMs ?? 30_000;
      if (beat > 0) {
        store.heartbeatTimer = setInterval(() => void store.heartbeat(), beat);
        store.heartbeatTimer.unref();
      }
      return store;
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
  }

  /** Set when the key check value in the database is no longer this process's key (rotated under it). */
  private fenced = false;

  /**
   * This process's heartbeat row (best effort: a full disk must not stop the service; it is logged). It also
   * re-reads the key check value: if the key was rotated while this process ran (its heartbeat must have gone
   * stale for the rotation to be allowed), the process stops sealing anything under its old key.
   */
  private async heartbeat(): Promise<void> {
    try {
      const { rows } = await this.db.query<{ value: string }>('SELECT value FROM store_meta WHERE name = $1', ['key_check']);
      if (!this.fenced && rows[0] && !this.opts.cipher.matchesKeyCheck(rows[0].value)) {
        this.fenced = true;
        this.opts.log.error({ dataKey: this.opts.cipher.fingerprint }, 'the data key was rotated while this process was running: it writes no more sealed data; restart it with the new VOLMO_DATA_KEY_FILE');
      }
      await this.db.query('INSERT INTO store_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value', [
        this.heartbeatName,
        JSON.stringify({ at: Date.now(), pid: process.pid }),
      ]);
    } catch (e) {
      this.opts.log.warn({ code: (e as { code?: string }).code }, 'store heartbeat not written');
    }
  }

  private seal(value: unknown, aad: string): string {
    if (this.fenced) throw new AppError('store_unavailable', 'the data key was rotated while this process was running: restart it with the new VOLMO_DATA_KEY_FILE (nothing was written)', { expose: true });
    return this.opts.cipher.seal(storableJson(value), aad);
  }

  private open<T>(sealed: string, aad: string, what: string): T {
    return JSON.parse(this.opts.cipher.open(sealed, aad, what)) as T;
  }

  private analysisStore(): AnalysisStore {
    const { db, now } = this;
    const columns = 'id, analysis_key, model_sha, started_at, finished_at, payload';
    const toAnalysis = (r: AnalysisRow): StoredAnalysis => {
      const p = this.open<AnalysisPayload>(r.payload, `analysis:${r.id}`, 'analysis');
      return { id: r.id, key: r.analysis_key, modelSha: r.model_sha, startedAt: Number(r.started_at), finishedAt: Number(r.finished_at), subject: p.subject, references: p.references, result: p.result };
    };
    const retainedUntil = (finishedAt: number) => finishedAt + this.opts.retention.analysisMs;
    return {
      findByKey: async (key) => {
        const { rows } = await db.query<AnalysisRow>(`SELECT ${columns} FROM analyses WHERE analysis_key = $1 AND expires_at > $2`, [key, now()]);
        return rows[0] && toAnalysis(rows[0]);
      },
      findById: async (id) => {
        const { rows } = await db.query<AnalysisRow>(`SELECT ${columns} FROM analyses WHERE id = $1 AND expires_at > $2`, [id, now()]);
        return rows[0] && toAnalysis(rows[0]);
      },
      save: async (a) => {
        const payload = this.seal({ subject: a.subject, references: [...a.references], result: a.result } satisfies AnalysisPayload, `analysis:${a.id}`);
        await db.query(
          `INSERT INTO analyses (id, analysis_key, subject_mac, model_sha, started_at, finished_at, expires_at, payload)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (analysis_key) DO UPDATE SET id = excluded.id, subject_mac = excluded.subject_mac, model_sha = excluded.model_sha,
             started_at = excluded.started_at, finished_at = excluded.finished_at, expires_at = excluded.expires_at, payload = excluded.payload`,
          [a.id, a.key, this.opts.cipher.mac(a.subject), a.modelSha, a.startedAt, a.finishedAt, retainedUntil(a.finishedAt), payload],
        );
      },
      update: async (id, result) => {
        const found = await this.analyses.findById(id);
        if (!found) return false;
        const payload = this.seal({ subject: found.subject, references: [...found.references], result } satisfies AnalysisPayload, `analysis:${id}`);
        const r = await db.query('UPDATE analyses SET payload = $1 WHERE id = $2 AND expires_at > $3', [payload, id, now()]);
        return r.rowCount === 1;
      },
      latestForSubject: async (subject, limit) => {
        const { rows } = await db.query<AnalysisRow>(
          `SELECT ${columns} FROM analyses WHERE subject_mac = $1 AND expires_at > $2 ORDER BY started_at DESC LIMIT $3`,
          [this.opts.cipher.mac(subject), now(), limit],
        );
        return rows.map(toAnalysis);
      },
    };
  }

  private feedbackSink(): FeedbackSink {
    const { db, now } = this;
    const aad = (service: string, card: string, outcome: string) => `feedback:${service}|${card}|${outcome}`;
    return {
      record: async (serviceId, items) => {
        const recorded: FeedbackItem[] = [];
        const at = now();
        for (const f of items) {
          const r = await db.query(
            'INSERT INTO feedback (service, card, outcome, received_at, payload) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (service, card, outcome) DO NOTHING',
            [serviceId, f.card, f.outcome, at, this.seal(f, aad(serviceId, f.card, f.outcome))],
          );
          if (r.rowCount === 1) recorded.push(f);
        }
        this.opts.log.info({ service: serviceId, recorded: recorded.length, duplicates: items.length - recorded.length }, 'card feedback recorded');
        return recorded;
      },
      list: async ({ since, limit }) => {
        const { rows } = await db.query<{ service: string; card: string; outcome: string; received_at: number | string; payload: string }>(
          'SELECT service, card, outcome, received_at, payload FROM feedback WHERE received_at >= $1 ORDER BY received_at, service, card, outcome LIMIT $2',
          [since?.getTime() ?? 0, limit],
        );
        return rows.map((r): StoredFeedback => ({ ...this.open<FeedbackItem>(r.payload, aad(r.service, r.card, r.outcome), 'feedback'), service: r.service, receivedAt: new Date(Number(r.received_at)).toISOString() }));
      },
    };
  }

  private replayCache(): ReplayCache {
    const { db, now } = this;
    return {
      checkAndRemember: async (id, expiresAtMs) => {
        const idHash = sha256(id);
        // An expired record of the same id no longer protects anything (its JWT's exp has passed).
        await db.query('DELETE FROM replay WHERE id_hash = $1 AND expires_at <= $2', [idHash, now()]);
        const r = await db.query('INSERT INTO replay (id_hash, expires_at) VALUES ($1, $2) ON CONFLICT (id_hash) DO NOTHING', [idHash, expiresAtMs]);
        return r.rowCount === 1;
      },
    };
  }

  private writebackStore(): WritebackStore {
    const { db, now } = this;
    const columns = 'idem_key, analysis_id, action, profile, state, resources, created_at, updated_at';
    type Row = { idem_key: string; analysis_id: string; action: string; profile: string; state: string; resources: string; created_at: number | string; updated_at: number | string };
    const toRecord = (r: Row): WritebackRecord => ({
      key: r.idem_key, analysisId: r.analysis_id, action: r.action as WritebackAction, profile: r.profile, state: r.state as WritebackState,
      resources: JSON.parse(r.resources) as string[], createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
    });
    return {
      get: async (key) => {
        const { rows } = await db.query<Row>(`SELECT ${columns} FROM writeback WHERE idem_key = $1`, [key]);
        return rows[0] && toRecord(rows[0]);
      },
      begin: async (rec) => {
        const t = now();
        const inserted = await db.query(
          `INSERT INTO writeback (${columns}) VALUES ($1, $2, $3, $4, 'pending', '[]', $5, $5) ON CONFLICT (idem_key) DO NOTHING`,
          [rec.key, rec.analysisId, rec.action, rec.profile, t],
        );
        if (inserted.rowCount === 1) return true;
        // A refused or failed attempt may start over; one row update decides between concurrent retries.
        const retaken = await db.query(`UPDATE writeback SET state = 'pending', updated_at = $2 WHERE idem_key = $1 AND state IN ('refused', 'failed')`, [rec.key, t]);
        return retaken.rowCount === 1;
      },
      settle: async (key, state, resources) => {
        const t = now();
        const { rows } = await db.query<{ analysis_id: string; action: string }>(
          'UPDATE writeback SET state = $2, resources = $3, updated_at = $4 WHERE idem_key = $1 RETURNING analysis_id, action',
          [key, state, JSON.stringify([...resources]), t],
        );
        const rec = rows[0];
        if (!rec) return false;
        if (state === 'done' && (rec.action === 'approve' || rec.action === 'discard')) {
          // Retention runs from filing or discard (never shortened; an analysis already gone stays gone).
          const until = t + this.opts.retention.analysisMs;
          await db.query('UPDATE analyses SET expires_at = $1 WHERE id = $2 AND expires_at > $3 AND expires_at < $1', [until, rec.analysis_id, t]);
        }
        return true;
      },
      forAnalysis: async (analysisId) => {
        const { rows } = await db.query<Row>(`SELECT ${columns} FROM writeback WHERE analysis_id = $1 ORDER BY created_at, idem_key`, [analysisId]);
        return rows.map(toRecord);
      },
    };
  }

  private auditTrail(): AuditTrail {
    const { db } = this;
    type Row = { at: number | string; actor: string; action: string; analysis_id: string; profile: string; fhir_origin: string; outcome: string; http_status: number | string | null; resources: string };
    // Ids sort after each other within one millisecond of one process (time-ordered prefix, then a random part).
    let last = '';
    const nextId = (at: number) => {
      let id = `${at.toString(36).padStart(10, '0')}-${randomUUID()}`;
      if (id <= last) id = `${last}+`;
      last = id;
      return id;
    };
    return {
      append: async (e) => {
        await db.query(
          'INSERT INTO audit_log (id, at, actor, action, analysis_id, profile, fhir_origin, outcome, http_status, resources) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
          [nextId(e.at), e.at, e.actor, e.action, e.analysisId, e.profile, e.fhirOrigin, e.outcome, e.httpStatus ?? null, JSON.stringify(e.resources)],
        );
      },
      list: async ({ since, analysisId, limit }) => {
        const { rows } = analysisId === undefined
          ? await db.query<Row>('SELECT * FROM audit_log WHERE at >= $1 ORDER BY at, id LIMIT $2', [since ?? 0, limit])
          : await db.query<Row>('SELECT * FROM audit_log WHERE at >= $1 AND analysis_id = $2 ORDER BY at, id LIMIT $3', [since ?? 0, analysisId, limit]);
        return rows.map((r): AuditEvent => ({
          at: Number(r.at), actor: r.actor, action: r.action, analysisId: r.analysis_id, profile: r.profile, fhirOrigin: r.fhir_origin, outcome: r.outcome,
          ...(r.http_status === null || r.http_status === undefined ? {} : { httpStatus: Number(r.http_status) }), resources: JSON.parse(r.resources) as string[],
        }));
      },
    };
  }

  private markStore(): MarkStore {
    const { db } = this;
    return {
      get: async (source) => (await db.query<{ mark: string }>('SELECT mark FROM watcher_marks WHERE source = $1', [source])).rows[0]?.mark,
      set: async (source, mark) => {
        await db.query('INSERT INTO watcher_marks (source, mark) VALUES ($1, $2) ON CONFLICT (source) DO UPDATE SET mark = excluded.mark', [source, mark]);
      },
    };
  }

  private jobQueue(): JobQueue {
    const { db, now } = this;
    const columns = 'id, job_key, state, attempts, max_attempts, run_at, lease_until, created_at, updated_at, analysis_id, error_kind';
    const aad = (id: string) => `job:${id}`;
    const toInfo = (r: JobRow): JobInfo => {
      const info: JobInfo = {
        id: r.id,
        key: r.job_key,
        state: r.state,
        attempts: Number(r.attempts),
        maxAttempts: Number(r.max_attempts),
        runAt: Number(r.run_at),
        createdAt: Number(r.created_at),
        updatedAt: Number(r.updated_at),
      };
      if (r.lease_until !== null && r.lease_until !== undefined) info.leaseUntil = Number(r.lease_until);
      if (r.analysis_id) info.analysisId = r.analysis_id;
      if (r.error_kind) info.errorKind = r.error_kind;
      if (r.state === 'dead' && r.payload) info.detail = this.open<unknown>(r.payload, aad(r.id), 'job');
      return info;
    };
    const byKey = async (key: string) => (await db.query<JobRow>(`SELECT ${columns}, payload FROM jobs WHERE job_key = $1`, [key])).rows[0];
    return {
      enqueue: async (key, payload, opts = {}) => {
        const t = now();
        const max = opts.maxAttempts ?? DEFAULT_JOB_MAX_ATTEMPTS;
        const id = randomUUID();
        const inserted = await db.query(
          `INSERT INTO jobs (id, job_key, state, attempts, max_attempts, run_at, created_at, updated_at, payload)
           VALUES ($1, $2, 'queued', 0, $3, $4, $4, $4, $5) ON CONFLICT (job_key) DO NOTHING`,
          [id, key, max, t, this.seal(payload, aad(id))],
        );
        if (inserted.rowCount === 1) return { job: toInfo((await byKey(key))!), queued: true };
        const row = await byKey(key);
        if (!row) return this.jobs.enqueue(key, payload, opts); // deleted by a sweep in between
        if (row.state === 'queued') {
          // A new request for a job waiting out a retry's backoff makes it due now ("retried on the next chart action").
          await db.query("UPDATE jobs SET payload = $1, updated_at = $2, run_at = CASE WHEN run_at > $2 THEN $2 ELSE run_at END WHERE id = $3 AND state = 'queued'", [this.seal(payload, aad(row.id)), t, row.id]);
          return { job: toInfo(row), queued: false };
        }
        // Done without a retained analysis, or dead past its hold: queued again (one statement, so two replicas revive it once).
        const revived = await db.query(
          `UPDATE jobs SET state = 'queued', attempts = 0, max_attempts = $1, run_at = $2, updated_at = $2, lease_until = NULL, claim = NULL,
             analysis_id = NULL, error_kind = NULL, payload = $3
           WHERE id = $4 AND (
             (state = 'dead' AND run_at <= $2) OR
             (state = 'done' AND NOT EXISTS (SELECT 1 FROM analyses WHERE analyses.id = jobs.analysis_id AND analyses.expires_at > $2)))`,
          [max, t, this.seal(payload, aad(row.id)), row.id],
        );
        return { job: toInfo((await byKey(key)) ?? row), queued: revived.rowCount === 1 };
      },
      claim: async <P>(leaseMs: number): Promise<ClaimedJob<P> | undefined> => {
        const t = now();
        const claim = randomUUID();
        // A running job whose lease ran out with no attempt left: its worker died on the last one.
        await db.query(
          "UPDATE jobs SET state = 'dead', error_kind = 'worker_lost', lease_until = NULL, claim = NULL, payload = '', run_at = $1, updated_at = $1 WHERE state = 'running' AND lease_until <= $1 AND attempts >= max_attempts",
          [t],
        );
        const ready = "(state = 'queued' AND run_at <= $1) OR (state = 'running' AND lease_until <= $1 AND attempts < max_attempts)";
        const set = "state = 'running', attempts = attempts + 1, claim = $2, lease_until = $3, updated_at = $1";
        // PostgreSQL: competing replicas skip each other's locked candidate instead of waiting for it. SQLite: the
        // pick and the update are one statement, i.e. one write transaction, and writers are serialized by the
        // database lock (an explicit BEGIN IMMEDIATE around two statements would hold that lock across awaits).
        const pick = `SELECT id FROM jobs WHERE ${ready} ORDER BY run_at, created_at LIMIT 1${db.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : ''}`;
        const { rows } = await db.query<JobRow & { claim: string }>(`UPDATE jobs SET ${set} WHERE id = (${pick}) RETURNING ${columns}, claim, payload`, [t, claim, t + leaseMs]);
        const r = rows[0];
        if (!r) return undefined;
        return { ...toInfo({ ...r, payload: '' }), claim: r.claim, payload: this.open<P>(r.payload, aad(r.id), 'job') };
      },
      heartbeat: async (job, leaseMs) => {
        const t = now();
        const r = await db.query("UPDATE jobs SET lease_until = $1, updated_at = $2 WHERE id = $3 AND claim = $4 AND state = 'running'", [t + leaseMs, t, job.id, job.claim]);
        return r.rowCount === 1;
      },
      complete: async (job, analysisId) => {
        const r = await db.query(
          "UPDATE jobs SET state = 'done', analysis_id = $1, lease_until = NULL, claim = NULL, error_kind = NULL, payload = '', updated_at = $2 WHERE id = $3 AND claim = $4 AND state = 'running'",
          [analysisId, now(), job.id, job.claim],
        );
        return r.rowCount === 1;
      },
      fail: async (job, f) => {
        const t = now();
        const retry = f.retryable && job.attempts < job.maxAttempts;
        const r = retry
          ? await db.query(
              "UPDATE jobs SET state = 'queued', run_at = $1, error_kind = $2, lease_until = NULL, claim = NULL, updated_at = $3 WHERE id = $4 AND claim = $5 AND state = 'running'",
              [t + backoffFor(job.attempts, f.backoffMs), f.errorKind, t, job.id, job.claim],
            )
          : await db.query(
              "UPDATE jobs SET state = 'dead', run_at = $1, error_kind = $2, lease_until = NULL, claim = NULL, payload = $3, updated_at = $4 WHERE id = $5 AND claim = $6 AND state = 'running'",
              [t + f.holdMs, f.errorKind, f.detail === undefined ? '' : this.seal(f.detail, aad(job.id)), t, job.id, job.claim],
            );
        return r.rowCount === 1 ? (retry ? 'queued' : 'dead') : 'lost';
      },
      get: async (id) => {
        const { rows } = await db.query<JobRow>(`SELECT ${columns}, payload FROM jobs WHERE id = $1`, [id]);
        return rows[0] && toInfo(rows[0]);
      },
      findByKey: async (key) => {
        const row = await byKey(key);
        return row && toInfo(row);
      },
      list: async ({ state, limit }) => {
        const { rows } = state
          ? await db.query<JobRow>(`SELECT ${columns}, payload FROM jobs WHERE state = $1 ORDER BY updated_at DESC, id LIMIT $2`, [state, limit])
          : await db.query<JobRow>(`SELECT ${columns}, payload FROM jobs ORDER BY updated_at DESC, id LIMIT $1`, [limit]);
        return rows.map(toInfo);
      },
      counts: async () => {
        const { rows } = await db.query<{ state: JobState; n: number | string }>('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state');
        const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
        for (const r of rows) out[r.state] = Number(r.n);
        return out;
      },
    };
  }

  keyed<T>(ns: KeyedNamespace): KeyedStore<T> {
    const { db, now } = this;
    const keyHash = (key: string) => this.opts.cipher.mac(`${ns}:${key}`);
    // Records written before the envelope hold the bare value.
    const unwrap = (v: unknown): T => (isKeyedEnvelope(v) ? v.value : v) as T;
    const aad = (hash: string) => `keyed:${ns}:${hash}`;
    return {
      put: async (key, value, ttlMs) => {
        const hash = keyHash(key);
        const t = now();
        return db.transaction(async (tx) => {
          await tx.query('DELETE FROM keyed WHERE ns = $1 AND key_hash = $2', [ns, hash]);
          const { rows } = await tx.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM keyed WHERE ns = $1 AND expires_at > $2', [ns, t]);
          if (Number(rows[0]?.n ?? 0) >= MAX_KEYED_ENTRIES) return false;
          // The lookup key is sealed with the value so that a key rotation can recompute key_hash (rotate-key.ts).
          await tx.query('INSERT INTO keyed (ns, key_hash, value, expires_at) VALUES ($1, $2, $3, $4)', [ns, hash, this.seal(keyedEnvelope(key, value), aad(hash)), t + ttlMs]);
          return true;
        });
      },
      get: async (key) => {
        const hash = keyHash(key);
        const { rows } = await db.query<{ value: string }>('SELECT value FROM keyed WHERE ns = $1 AND key_hash = $2 AND expires_at > $3', [ns, hash, now()]);
        return rows[0] ? unwrap(this.open<unknown>(rows[0].value, aad(hash), ns)) : undefined;
      },
      take: async (key) => {
        const hash = keyHash(key);
        const { rows } = await db.query<{ value: string; expires_at: number | string }>('DELETE FROM keyed WHERE ns = $1 AND key_hash = $2 RETURNING value, expires_at', [ns, hash]);
        const row = rows[0];
        return row && Number(row.expires_at) > now() ? unwrap(this.open<unknown>(row.value, aad(hash), ns)) : undefined;
      },
    };
  }

  async sweep(opts: { now?: number; batch?: number } = {}): Promise<SweepResult> {
    const t = opts.now ?? this.now();
    const batch = opts.batch ?? this.opts.sweepBatch ?? 1000;
    const del = async (table: string, pk: string[]) => {
      const cols = pk.join(', ');
      const lhs = pk.length > 1 ? `(${cols})` : cols;
      return (await this.db.query(`DELETE FROM ${table} WHERE ${lhs} IN (SELECT ${cols} FROM ${table} WHERE expires_at <= $1 LIMIT $2)`, [t, batch])).rowCount;
    };
    const jobs = (
      await this.db.query(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('done', 'dead') AND updated_at <= $1 LIMIT $2)",
        [t - this.opts.retention.analysisMs, batch],
      )
    ).rowCount;
    // Heartbeats of processes that were killed (or came back with a restored backup): gone after a day.
    const { rows: beats } = await this.db.query<{ name: string; value: string }>('SELECT name, value FROM store_meta WHERE name LIKE $1', [`${HEARTBEAT_PREFIX}%`]);
    for (const b of beats) if (b.name !== this.heartbeatName && heartbeatAt(b.value) < Date.now() - 86_400_000) await this.db.query('DELETE FROM store_meta WHERE name = $1', [b.name]);
    return { analyses: await del('analyses', ['id']), replay: await del('replay', ['id_hash']), keyed: await del('keyed', ['ns', 'key_hash']), jobs };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.db.query('DELETE FROM store_meta WHERE name = $1', [this.heartbeatName]).catch(() => undefined);
    await this.db.close();
  }
}
