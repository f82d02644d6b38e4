/**
 * The one place a store is chosen and opened from configuration (VOLMO_DATABASE_URL, VOLMO_DATA_KEY_FILE,
 * VOLMO_ANALYSIS_RETENTION_DAYS). Every failure to open is AppError('config_invalid'): the process exits
 * with status 78 and a message that names the setting and never a credential.
 */
import { dirname, join } from 'node:path';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { DataCipher, loadDataKey } from './data-key.js';
import { MemoryStore } from './memory-store.js';
import type { RetentionPolicy, VolmoStore } from './port.js';
import { PostgresDriver, SqliteDriver, type SqlDriver } from './sql-driver.js';
import { SqlStore } from './sql-store.js';

export type StoreConfig = Pick<Config, 'databaseUrl' | 'dataKeyFile' | 'analysisRetentionDays' | 'profile'>;

export interface OpenStoreOptions {
  now?: () => number;
  /** Retention sweep interval (default 10 minutes; 0: none). */
  sweepIntervalMs?: number;
  /** Heartbeat interval (default 30 s; see SqlStoreOptions). */
  heartbeatIntervalMs?: number;
  /** How long to try a PostgreSQL connection (default 5 s). */
  connectTimeoutMs?: number;
}

export const DEFAULT_DATABASE_URL = 'sqlite:var/volmo.db';

/** Where the generated (non-production) data key lives when VOLMO_DATA_KEY_FILE is unset: beside a SQLite database, else var/. */
export function defaultDataKeyFile(url: string): string {
  return join(url.startsWith('sqlite:') ? dirname(url.slice('sqlite:'.length)) : 'var', 'data.key');
}

/** The SQL driver for a durable VOLMO_DATABASE_URL (sqlite:… or postgres://…); AppError('config_invalid') when it cannot be opened. */
export async function openDriver(url: string, log: Logger, opts: { connectTimeoutMs?: number } = {}): Promise<SqlDriver> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    try {
      return new SqliteDriver(file);
    } catch (e) {
      throw new AppError('config_invalid', `VOLMO_DATABASE_URL: cannot open ${url}: ${(e as { code?: string }).code ?? (e as Error).message}`, { cause: e });
    }
  }
  return PostgresDriver.open(url, { log, connectTimeoutMs: opts.connectTimeoutMs });
}

export async function openStore(config: StoreConfig, log: Logger, opts: OpenStoreOptions = {}): Promise<VolmoStore> {
  const retention: RetentionPolicy = { analysisMs: config.analysisRetentionDays * 86_400_000 };
  const url = config.databaseUrl ?? DEFAULT_DATABASE_URL;
  if (url === 'memory:') {
    log.info('VOLMO_DATABASE_URL=memory: state is kept in this process only (lost at restart)');
    return new MemoryStore({ retention, log, now: opts.now });
  }
  let keyFile = config.dataKeyFile;
  if (!keyFile) {
    if (config.profile === 'production') throw new AppError('config_invalid', 'VOLMO_DATA_KEY_FILE: production needs the data key');
    keyFile = defaultDataKeyFile(url);
  }
  const { key, generated } = await loadDataKey(keyFile, { generate: !config.dataKeyFile });
  if (generated) log.warn({ file: keyFile }, 'VOLMO_DATA_KEY_FILE unset: generated a data key (keep it with the database: without it the stored data cannot be read)');
  const cipher = new DataCipher(key);
  const driver = await openDriver(url, log, opts);
  return SqlStore.open(driver, { cipher, retention, log: log.child({ component: 'store' }), now: opts.now, sweepIntervalMs: opts.sweepIntervalMs, heartbeatIntervalMs: opts.heartbeatIntervalMs });
}
