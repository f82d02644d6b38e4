/**
 * `volmo store <command>`: operations on the durable store named by VOLMO_DATABASE_URL, with the data key
 * from VOLMO_DATA_KEY_FILE (docs/deployment.md, "Backups" and "Data key rotation").
 *
 * - `rotate-key --new-key-file <path>`: re-seals everything under the new key in one transaction
 *   (rotate-key.ts). Every process using the database must be stopped first; a fresh heartbeat refuses.
 * - `backup <file>`: an online copy of a SQLite database (PostgreSQL: pg_dump). The data key is not in it.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { DataCipher, loadDataKey, parseDataKey } from './data-key.js';
import { DEFAULT_DATABASE_URL, defaultDataKeyFile, openDriver } from './open-store.js';
import { rotateDataKey } from './rotate-key.js';
import { SqliteDriver } from './sql-driver.js';

export const STORE_USAGE = `usage: volmo store <command>

commands:
  rotate-key --new-key-file <path>
                 re-seal every stored value and lookup hash under the key in <path> (32 bytes: raw, 64 hex
                 characters or base64), in one transaction; the current key is VOLMO_DATA_KEY_FILE. Stop every
                 volmo-cds process using the database first. Afterwards start them with VOLMO_DATA_KEY_FILE=<path>.
  backup <file>  online copy of a SQLite database to <file> (must not exist); PostgreSQL: use pg_dump.
                 The data key is NOT in the copy: keep VOLMO_DATA_KEY_FILE's key with it, separately.

database: VOLMO_DATABASE_URL (default ${DEFAULT_DATABASE_URL}); key: VOLMO_DATA_KEY_FILE (docs/configuration.md)`;

export type StoreCliConfig = Pick<Config, 'databaseUrl' | 'dataKeyFile' | 'profile'>;

export interface StoreCliIo {
  out(line: string): void;
  now?: () => number;
}

/** Exit status: 0 done, 2 usage; refusals throw AppError (config_invalid: 78 from src/cli.ts). */
export async function runStoreCli(args: string[], config: StoreCliConfig, log: Logger, io: StoreCliIo = { out: (l) => console.log(l) }): Promise<number> {
  const [command, ...rest] = args;
  const url = config.databaseUrl ?? DEFAULT_DATABASE_URL;
  switch (command) {
    case 'rotate-key':
      return rotateKey(rest, config, url, log, io);
    case 'backup':
      return backup(rest, config, url, log, io);
    case undefined:
    case 'help':
    case '--help':
      io.out(STORE_USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new AppError('bad_request', `unknown store command: ${command}\n\n${STORE_USAGE}`);
  }
}

function flag(args: string[], name: string): string | undefined {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const a = args[i]!;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : args[i + 1];
}

async function readNewKey(file: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AppError('config_invalid', code === 'ENOENT'
      ? `--new-key-file: ${file} does not exist (create one: openssl rand -hex 32 > ${file}; chmod 600 ${file})`
      : `--new-key-file: cannot read ${file}: ${code ?? (e as Error).message}`);
  }
  const key = parseDataKey(bytes);
  if (!key) throw new AppError('config_invalid', `--new-key-file: ${file} does not hold a 32-byte key (raw, 64 hex characters or base64; e.g. openssl rand -hex 32 > ${file})`);
  return key;
}

async function rotateKey(args: string[], config: StoreCliConfig, url: string, log: Logger, io: StoreCliIo): Promise<number> {
  const newFile = flag(args, 'new-key-file');
  if (!newFile) throw new AppError('config_invalid', `rotate-key needs --new-key-file <path> (the new 32-byte key; e.g. openssl rand -hex 32 > new.key)\n\n${STORE_USAGE}`);
  if (url === 'memory:') throw new AppError('config_invalid', 'VOLMO_DATABASE_URL=memory: keeps nothing at rest and seals nothing: there is no data key to rotate');
  let currentFile = config.dataKeyFile;
  if (!currentFile) {
    if (config.profile === 'production') throw new AppError('config_invalid', 'VOLMO_DATA_KEY_FILE: production needs the data key (the current key, to rotate from)');
    currentFile = defaultDataKeyFile(url);
  }
  if (url.startsWith('sqlite:') && !existsSync(url.slice('sqlite:'.length))) throw new AppError('config_invalid', `VOLMO_DATABASE_URL: ${url} does not exist (nothing to rotate)`);
  const { key: currentKey } = await loadDataKey(currentFile, { generate: false });
  const nextKey = await readNewKey(newFile);
  const current = new DataCipher(currentKey);
  const next = new DataCipher(nextKey);
  const db = await openDriver(url, log);
  try {
    io.out(`rotating the data key of ${db.description}: ${current.fingerprint} -> ${next.fingerprint} (one transaction; every volmo-cds process using this database must be stopped)`);
    const r = await rotateDataKey(db, current, next, { now: io.now });
    io.out(`done: re-sealed ${r.analyses} analyses (subject hashes recomputed), ${r.feedback} feedback records, ${r.keyed} launch/session records (lookup hashes recomputed), ${r.jobs} job payloads; key check value replaced`);
    if (r.keyedDropped) io.out(`removed ${r.keyedDropped} launch/session records written before lookup keys were sealed with them (those users launch the app again)`);
    if (r.staleHeartbeats) io.out(`removed ${r.staleHeartbeats} stale process heartbeat(s)`);
    io.out(`next: start the service with VOLMO_DATA_KEY_FILE=${resolve(newFile)} (or move that file over ${resolve(currentFile)}). The old key (${current.fingerprint}) no longer opens this database; keep it only as long as backups taken before now are kept — they still need it.`);
    return 0;
  } finally {
    await db.close();
  }
}

async function backup(args: string[], config: StoreCliConfig, url: string, log: Logger, io: StoreCliIo): Promise<number> {
  const dest = args.find((a) => !a.startsWith('--'));
  if (!dest) throw new AppError('config_invalid', `backup needs a destination file\n\n${STORE_USAGE}`);
  if (!url.startsWith('sqlite:')) {
    throw new AppError('config_invalid', `volmo store backup copies SQLite databases; ${url === 'memory:' ? 'memory: keeps nothing to back up' : 'for PostgreSQL use pg_dump (docs/deployment.md, "Backups")'}`);
  }
  if (existsSync(dest)) throw new AppError('config_invalid', `backup: ${dest} exists already (choose a new file; nothing was written)`);
  if (!existsSync(url.slice('sqlite:'.length))) throw new AppError('config_invalid', `VOLMO_DATABASE_URL: ${url} does not exist (nothing to back up)`);
  const db = (await openDriver(url, log)) as SqliteDriver;
  let keyCheck: string | undefined;
  try {
    await db.backup(dest);
    keyCheck = (await db.query<{ value: string }>("SELECT value FROM store_meta WHERE name = 'key_check'").catch(() => ({ rows: [] as { value: string }[] }))).rows[0]?.value;
  } finally {
    await db.close();
  }
  io.out(`backed up ${url} to ${dest} (online copy). The data key is NOT in it: without the key the copy's analyses, feedback, sessions and job payloads cannot be read — keep the key for this backup, stored separately.`);
  io.out(`data key: ${await whichKey(config, url, keyCheck)}`);
  return 0;
}

/** Names the key a backup needs, by fingerprint, when VOLMO_DATA_KEY_FILE's key is the one (never the key itself). */
async function whichKey(config: StoreCliConfig, url: string, keyCheck: string | undefined): Promise<string> {
  if (!keyCheck) return 'the database holds no key check value yet (no service has opened it)';
  const file = config.dataKeyFile ?? defaultDataKeyFile(url);
  try {
    const cipher = new DataCipher((await loadDataKey(file, { generate: false })).key);
    return cipher.matchesKeyCheck(keyCheck)
      ? `the copy needs the key with fingerprint ${cipher.fingerprint} (${file})`
      : `WARNING: ${file} (fingerprint ${cipher.fingerprint}) is not the key this database was written with; find the key that is, and keep it with the copy`;
  } catch (e) {
    return `could not check which key the copy needs: ${(e as Error).message}`;
  }
}
