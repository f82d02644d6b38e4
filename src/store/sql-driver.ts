/**
 * The two SQL engines behind one small interface, so the store's queries are written once. Queries use
 * PostgreSQL's `$n` placeholders; the SQLite driver rewrites them to `?`. Only SQL both engines run the
 * same way is used (ON CONFLICT, RETURNING, BIGINT, TEXT).
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { Pool, PoolClient } from 'pg';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';

export interface SqlResult<R> {
  rows: R[];
  /** Rows inserted, updated or deleted (or returned, for RETURNING). */
  rowCount: number;
}

export interface SqlExec {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<SqlResult<R>>;
}

export interface SqlDriver extends SqlExec {
  readonly dialect: 'sqlite' | 'postgres';
  /** Where it is, without credentials (for messages). */
  readonly description: string;
  /**
   * Runs `fn` in one transaction. `exclusive`: no other process runs an exclusive transaction on the same
   * database at the same time (PostgreSQL: a transaction-scoped advisory lock; SQLite: BEGIN IMMEDIATE).
   */
  transaction<T>(fn: (tx: SqlExec) => Promise<T>, opts?: { exclusive?: boolean }): Promise<T>;
  close(): Promise<void>;
}

/** `$1`, `$2`… to `?` with the parameters in the order they appear (a `$n` may repeat). */
function toSqlite(sql: string, params: readonly unknown[]): { sql: string; args: unknown[] } {
  const args: unknown[] = [];
  const out = sql.replace(/\$(\d+)/g, (_, n: string) => {
    args.push(params[Number(n) - 1]);
    return '?';
  });
  return { sql: out, args };
}

// ---------- SQLite (better-sqlite3, synchronous, one connection per process) ----------

/** A full disk (or size limit) as one clear error: the write is refused, nothing half-written, reads go on. */
function diskFull(e: unknown): AppError | undefined {
  const code = (e as { code?: unknown }).code;
  if (code !== 'SQLITE_FULL' && !(typeof code === 'string' && code.startsWith('SQLITE_IOERR') && /space|full/i.test(String((e as Error).message)))) return undefined;
  return new AppError('store_unavailable', 'the database is full (no space left on its disk, or its size limit): this write was refused; reads go on', { cause: e, expose: true });
}

export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  readonly description: string;
  private readonly db: BetterSqlite3.Database;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  /** Every operation runs in turn: a transaction's awaits must not interleave with other statements. */
  private tail: Promise<unknown> = Promise.resolve();

  /** `maxPageCount`: a size limit in pages (SQLite's max_page_count), as a full disk would impose one (tests). */
  constructor(file: string, opts: { maxPageCount?: number } = {}) {
    this.description = `sqlite:${file}`;
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    if (opts.maxPageCount) this.db.pragma(`max_page_count = ${Math.floor(opts.maxPageCount)}`);
  }

  private run<R>(sql: string, params: readonly unknown[]): SqlResult<R> {
    const { sql: text, args } = toSqlite(sql, params);
    let stmt = this.statements.get(text);
    if (!stmt) {
      stmt = this.db.prepare(text);
      if (this.statements.size < 200) this.statements.set(text, stmt);
    }
    if (stmt.reader) {
      const rows = stmt.all(...args) as R[];
      return { rows, rowCount: rows.length };
    }
    try {
      return { rows: [], rowCount: stmt.run(...args).changes };
    } catch (e) {
      throw diskFull(e) ?? e;
    }
  }

  private serial<T>(op: () => Promise<T> | T): Promise<T> {
    const next = this.tail.then(op);
    this.tail = next.catch(() => undefined);
    return next;
  }

  query<R = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<SqlResult<R>> {
    return this.serial(() => this.run<R>(sql, params));
  }

  transaction<T>(fn: (tx: SqlExec) => Promise<T>, opts: { exclusive?: boolean } = {}): Promise<T> {
    return this.serial(async () => {
      this.db.exec(opts.exclusive ? 'BEGIN IMMEDIATE' : 'BEGIN');
      try {
        const result = await fn({ query: async <R>(sql: string, params: readonly unknown[] = []) => this.run<R>(sql, params) });
        this.db.exec('COMMIT');
        return result;
      } catch (e) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw diskFull(e) ?? e;
      }
    });
  }

  /**
   * An online copy of the whole database to `dest` (SQLite's backup API, page by page: this and other processes
   * go on reading and writing meanwhile; the copy is one consistent state). `dest` must not exist yet.
   */
  async backup(dest: string): Promise<void> {
    await this.db.backup(dest);
  }

  async close(): Promise<void> {
    await this.tail;
    if (this.db.open) this.db.close();
  }
}

// ---------- PostgreSQL (pg pool) ----------

const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/** A PostgreSQL URL's place without user or password: postgres://host:port/db (schema). */
export function describePostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    const schema = u.searchParams.get('schema');
    return `postgres://${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}${schema ? ` (schema ${schema})` : ''}`;
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

/** A stable 63-bit advisory lock id for `name` (FNV-1a, kept in the signed bigint range). */
function advisoryLockId(name: string): string {
  let h = 0xcbf29ce484222325n;
  for (const c of Buffer.from(name, 'utf8')) h = BigInt.asUintN(64, (h ^ BigInt(c)) * 0x100000001b3n);
  return BigInt.asIntN(64, h & 0x7fffffffffffffffn).toString();
}

export class PostgresDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  readonly description: string;
  private constructor(
    private readonly pool: Pool,
    description: string,
    private readonly schema: string,
  ) {
    this.description = description;
  }

  /**
   * Connects (at most `connectTimeoutMs`) and checks the connection; `?schema=<name>` in the URL puts every
   * table in that schema (created when missing). Unreachable: AppError('config_invalid'), without credentials.
   */
  static async open(url: string, opts: { log: Logger; connectTimeoutMs?: number; maxConnections?: number }): Promise<PostgresDriver> {
    const description = describePostgresUrl(url);
    const u = new URL(url);
    const schema = u.searchParams.get('schema') ?? 'public';
    if (!SCHEMA_RE.test(schema)) throw new AppError('config_invalid', `VOLMO_DATABASE_URL: schema must match ${SCHEMA_RE.source}`);
    u.searchParams.delete('schema');
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({
      connectionString: u.href,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      max: opts.maxConnections ?? 10,
      options: `-c search_path=${schema}`,
      application_name: 'volmo-cds',
    });
    // An idle connection dropped by the server must not crash the process; the next query reconnects.
    pool.on('error', (e: Error & { code?: string }) => opts.log.warn({ code: e.code }, 'database connection lost (idle)'));
    const driver = new PostgresDriver(pool, description, schema);
    try {
      await pool.query('SELECT 1');
      if (schema !== 'public') {
        await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`).catch((e: { code?: string }) => {
          if (e.code !== '23505' && e.code !== '42P06') throw e; // created at the same moment by another replica
        });
      }
    } catch (e) {
      await pool.end().catch(() => undefined);
      const code = (e as { code?: string }).code;
      throw new AppError('config_invalid', `VOLMO_DATABASE_URL: cannot use the database at ${description}: ${code ?? (e as Error).message}`, { cause: e });
    }
    return driver;
  }

  async query<R = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<SqlResult<R>> {
    const r = await this.pool.query(sql, params as unknown[]);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
  }

  async transaction<T>(fn: (tx: SqlExec) => Promise<T>, opts: { exclusive?: boolean } = {}): Promise<T> {
    const client: PoolClient = await this.pool.connect();
    try {
      await client.query('BEGIN');
      if (opts.exclusive) await client.query('SELECT pg_advisory_xact_lock($1)', [advisoryLockId(`volmo-store:${this.schema}`)]);
      const result = await fn({
        query: async <R>(sql: string, params: readonly unknown[] = []) => {
          const r = await client.query(sql, params as unknown[]);
          return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
        },
      });
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
