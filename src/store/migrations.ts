/**
 * Versioned schema migrations, applied at start-up in one exclusive transaction (PostgreSQL: advisory
 * lock; SQLite: BEGIN IMMEDIATE), so two replicas starting at once apply each version exactly once.
 * `schema_migrations` records what was applied. Append new versions; never edit an applied one.
 * The SQL is the subset PostgreSQL and SQLite run alike.
 */
import { AppError } from '../errors.js';
import type { SqlExec } from './sql-driver.js';

export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'analyses, feedback, replay, keyed records, watcher marks, store meta',
    statements: [
      `CREATE TABLE analyses (
        id TEXT PRIMARY KEY,
        analysis_key TEXT NOT NULL UNIQUE,
        subject_mac TEXT NOT NULL,
        model_sha TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        finished_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        payload TEXT NOT NULL
      )`,
      'CREATE INDEX analyses_subject ON analyses (subject_mac, started_at)',
      'CREATE INDEX analyses_expires ON analyses (expires_at)',
      `CREATE TABLE feedback (
        service TEXT NOT NULL,
        card TEXT NOT NULL,
        outcome TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (service, card, outcome)
      )`,
      'CREATE INDEX feedback_received ON feedback (received_at)',
      'CREATE TABLE replay (id_hash TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)',
      'CREATE INDEX replay_expires ON replay (expires_at)',
      `CREATE TABLE keyed (
        ns TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        value TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (ns, key_hash)
      )`,
      'CREATE INDEX keyed_expires ON keyed (expires_at)',
      'CREATE TABLE watcher_marks (source TEXT PRIMARY KEY, mark TEXT NOT NULL)',
      'CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)',
    ],
  },
  {
    version: 2,
    name: 'jobs (background analyses claimed under a lease)',
    statements: [
      `CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        job_key TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        run_at BIGINT NOT NULL,
        lease_until BIGINT,
        claim TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        analysis_id TEXT,
        error_kind TEXT,
        payload TEXT NOT NULL
      )`,
      'CREATE INDEX jobs_ready ON jobs (state, run_at)',
      'CREATE INDEX jobs_updated ON jobs (state, updated_at)',
    ],
  },
  {
    version: 3,
    name: 'write-back idempotency records, audit trail',
    statements: [
      `CREATE TABLE writeback (
        idem_key TEXT PRIMARY KEY,
        analysis_id TEXT NOT NULL,
        action TEXT NOT NULL,
        profile TEXT NOT NULL,
        state TEXT NOT NULL,
        resources TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      'CREATE INDEX writeback_analysis ON writeback (analysis_id, created_at)',
      `CREATE TABLE audit_log (
        id TEXT PRIMARY KEY,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        analysis_id TEXT NOT NULL,
        profile TEXT NOT NULL,
        fhir_origin TEXT NOT NULL,
        outcome TEXT NOT NULL,
        http_status INTEGER,
        resources TEXT NOT NULL
      )`,
      'CREATE INDEX audit_log_at ON audit_log (at, id)',
      'CREATE INDEX audit_log_analysis ON audit_log (analysis_id, at)',
    ],
  },
];

/** Applies the pending migrations inside the caller's exclusive transaction; returns the versions applied now. */
export async function applyMigrations(tx: SqlExec, migrations: readonly Migration[] = MIGRATIONS, now: () => number = Date.now): Promise<number[]> {
  await tx.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
  const { rows } = await tx.query<{ version: number | string }>('SELECT version FROM schema_migrations');
  const applied = new Set(rows.map((r) => Number(r.version)));
  const known = Math.max(0, ...migrations.map((m) => m.version));
  const newest = Math.max(0, ...applied);
  if (newest > known) {
    throw new AppError('config_invalid', `VOLMO_DATABASE_URL: the database schema is at version ${newest}, newer than this build knows (${known}): run the newer volmo-cds, or restore a backup`);
  }
  const done: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue;
    for (const sql of m.statements) await tx.query(sql);
    await tx.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, now()]);
    done.push(m.version);
  }
  return done;
}
