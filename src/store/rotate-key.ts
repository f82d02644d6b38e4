/**
 * Data key rotation (`volmo store rotate-key`): every sealed value is opened with the current key and sealed
 * again with the new one, every keyed-hash (HMAC) lookup column is recomputed under the new key, and the key
 * check value is replaced — in ONE exclusive transaction, so a crash or an error part-way leaves the database
 * exactly as it was, under the current key. The service must be stopped first: a running process holds the
 * current key in memory and would go on writing under it. Running processes are recognised by their
 * heartbeat rows in `store_meta` (sql-store.ts); a fresh one refuses the rotation.
 *
 * What is sealed or keyed (sql-store.ts; a new sealed column must be added here, and test/store/rotate-key.test.ts
 * fails when a table holds a sealed value this file does not re-seal):
 * - analyses.payload (AAD `analysis:<id>`) and analyses.subject_mac (HMAC of the subject inside the payload)
 * - feedback.payload (AAD `feedback:<service>|<card>|<outcome>`)
 * - keyed.value (AAD `keyed:<ns>:<key_hash>`) and keyed.key_hash (HMAC of `<ns>:<lookup key>`; the lookup key
 *   is sealed inside the value since this version — older records, which lack it, cannot be re-keyed and are
 *   deleted: their users launch the app again)
 * - jobs.payload (AAD `job:<id>`; empty once a job is done, or dead without detail)
 * - store_meta.key_check
 * Not sealed, left alone: replay (sha256 of JWT ids), watcher_marks, writeback, audit_log, schema_migrations.
 */
import { AppError } from '../errors.js';
import type { DataCipher } from './data-key.js';
import { SealedValueError } from './data-key.js';
import { MIGRATIONS } from './migrations.js';
import type { SqlDriver, SqlExec } from './sql-driver.js';

/** A process that wrote a heartbeat this recently counts as running (its interval is 30 s). */
export const REPLICA_FRESH_MS = 90_000;
export const HEARTBEAT_PREFIX = 'replica:';

/** The envelope a keyed record's value is sealed in, so that rotation can recompute its lookup hash. */
export interface KeyedEnvelope<T = unknown> {
  /** Marks the envelope (a value stored before it is the bare value). */
  keyed: 1;
  lookup: string;
  value: T;
}

export function keyedEnvelope<T>(lookup: string, value: T): KeyedEnvelope<T> {
  return { keyed: 1, lookup, value };
}

export function isKeyedEnvelope(v: unknown): v is KeyedEnvelope {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const e = v as KeyedEnvelope;
  return Object.keys(e).length === 3 && e.keyed === 1 && typeof e.lookup === 'string' && 'value' in e;
}

export interface RotationResult {
  from: string;
  to: string;
  analyses: number;
  feedback: number;
  keyed: number;
  /** Keyed records written before lookup keys were sealed with them: deleted (their users launch the app again). */
  keyedDropped: number;
  jobs: number;
  /** Heartbeats older than REPLICA_FRESH_MS (processes that stopped without removing theirs): removed. */
  staleHeartbeats: number;
}

export interface RotateOptions {
  now?: () => number;
  /** Rows read per round (default 500). */
  batch?: number;
}

const PAGE = 500;

const KEY_CHECK_MISSING = 'the database holds no data key check value (no service has opened it yet): there is nothing to rotate';

/** Re-seals everything under `next`; refuses (nothing changed) on a wrong current key, a running service, an unknown schema. */
export async function rotateDataKey(db: SqlDriver, current: DataCipher, next: DataCipher, opts: RotateOptions = {}): Promise<RotationResult> {
  if (current.fingerprint === next.fingerprint) throw new AppError('config_invalid', `--new-key-file: the new key is the current key (fingerprint ${current.fingerprint}); generate a new one: openssl rand -hex 32 > new.key`);
  const now = opts.now ?? Date.now;
  const page = opts.batch ?? PAGE;
  return db.transaction(async (tx) => {
    await checkSchema(tx, db.description);
    const { rows: meta } = await tx.query<{ name: string; value: string }>('SELECT name, value FROM store_meta');
    const check = meta.find((r) => r.name === 'key_check');
    if (!check) throw new AppError('config_invalid', `${db.description}: ${KEY_CHECK_MISSING}`);
    if (!current.matchesKeyCheck(check.value)) {
      if (next.matchesKeyCheck(check.value)) {
        throw new AppError('config_invalid', `--new-key-file: the data in ${db.description} is already under the new key (fingerprint ${next.fingerprint}): the rotation was done; start the service with VOLMO_DATA_KEY_FILE pointing at the new key`);
      }
      throw new AppError('config_invalid', `VOLMO_DATA_KEY_FILE: the data key (fingerprint ${current.fingerprint}) is not the key the data in ${db.description} was written with; rotate from that key (nothing was read or changed)`);
    }
    const t = now();
    const heartbeats = meta.filter((r) => r.name.startsWith(HEARTBEAT_PREFIX)).map((r) => ({ name: r.name, at: heartbeatAt(r.value) }));
    const running = heartbeats.filter((h) => h.at > t - REPLICA_FRESH_MS);
    if (running.length) {
      const ago = Math.max(0, Math.round((t - Math.max(...running.map((h) => h.at))) / 1000));
      throw new AppError(
        'config_invalid',
        `${running.length} volmo-cds process(es) using ${db.description} wrote a heartbeat within the last ${REPLICA_FRESH_MS / 1000} s (the latest ${ago} s ago): stop every replica, worker-side job runner and CLI using this database first (they hold the current key and would keep writing under it); a process that was killed is ignored once its heartbeat is ${REPLICA_FRESH_MS / 1000} s old. Nothing was changed.`,
      );
    }
    if (db.dialect === 'postgres') {
      // Writers that ignore the heartbeat check (or start now) wait until the rotation is committed.
      await tx.query('LOCK TABLE analyses, feedback, keyed, jobs, store_meta IN EXCLUSIVE MODE');
    }
    for (const h of heartbeats) await tx.query('DELETE FROM store_meta WHERE name = $1', [h.name]);
    const result: RotationResult = { from: current.fingerprint, to: next.fingerprint, analyses: 0, feedback: 0, keyed: 0, keyedDropped: 0, jobs: 0, staleHeartbeats: heartbeats.length };

    // analyses: payload re-sealed, subject_mac recomputed from the subject inside it.
    for (let after = ''; ;) {
      const { rows } = await tx.query<{ id: string; payload: string }>('SELECT id, payload FROM analyses WHERE id > $1 ORDER BY id LIMIT $2', [after, page]);
      for (const r of rows) {
        const aad = `analysis:${r.id}`;
        const plain = reopen(current, r.payload, aad, `analyses row ${r.id}`);
        const subject = (JSON.parse(plain) as { subject?: unknown }).subject;
        if (typeof subject !== 'string') throw new AppError('internal', `analyses row ${r.id}: the sealed payload has no subject; nothing was changed`);
        await tx.query('UPDATE analyses SET payload = $1, subject_mac = $2 WHERE id = $3', [next.seal(plain, aad), next.mac(subject), r.id]);
        result.analyses++;
      }
      if (rows.length < page) break;
      after = rows[rows.length - 1]!.id;
    }

    // feedback: payload re-sealed (its key is service, card, outcome: unchanged).
    for (let after: [string, string, string] = ['', '', '']; ;) {
      const { rows } = await tx.query<{ service: string; card: string; outcome: string; payload: string }>(
        'SELECT service, card, outcome, payload FROM feedback WHERE (service, card, outcome) > ($1, $2, $3) ORDER BY service, card, outcome LIMIT $4',
        [...after, page],
      );
      for (const r of rows) {
        const aad = `feedback:${r.service}|${r.card}|${r.outcome}`;
        const plain = reopen(current, r.payload, aad, `feedback row ${r.service}/${r.card}/${r.outcome}`);
        await tx.query('UPDATE feedback SET payload = $1 WHERE service = $2 AND card = $3 AND outcome = $4', [next.seal(plain, aad), r.service, r.card, r.outcome]);
        result.feedback++;
      }
      if (rows.length < page) break;
      const last = rows[rows.length - 1]!;
      after = [last.service, last.card, last.outcome];
    }

    // keyed: the primary key itself changes (key_hash), so the list is read first (bounded: MAX_KEYED_ENTRIES per namespace).
    const { rows: keys } = await tx.query<{ ns: string; key_hash: string }>('SELECT ns, key_hash FROM keyed ORDER BY ns, key_hash');
    for (const k of keys) {
      const { rows } = await tx.query<{ value: string }>('SELECT value FROM keyed WHERE ns = $1 AND key_hash = $2', [k.ns, k.key_hash]);
      if (!rows[0]) continue;
      const aad = `keyed:${k.ns}:${k.key_hash}`;
      const plain = reopen(current, rows[0].value, aad, `keyed row ${k.ns}`);
      const parsed = JSON.parse(plain) as unknown;
      if (!isKeyedEnvelope(parsed)) {
        await tx.query('DELETE FROM keyed WHERE ns = $1 AND key_hash = $2', [k.ns, k.key_hash]);
        result.keyedDropped++;
        continue;
      }
      const hash = next.mac(`${k.ns}:${parsed.lookup}`);
      await tx.query('UPDATE keyed SET key_hash = $1, value = $2 WHERE ns = $3 AND key_hash = $4', [hash, next.seal(plain, `keyed:${k.ns}:${hash}`), k.ns, k.key_hash]);
      result.keyed++;
    }

    // jobs: payload re-sealed where there is one ('' once done, or dead without detail).
    for (let after = ''; ;) {
      const { rows } = await tx.query<{ id: string; payload: string }>('SELECT id, payload FROM jobs WHERE id > $1 ORDER BY id LIMIT $2', [after, page]);
      for (const r of rows) {
        if (r.payload === '') continue;
        const aad = `job:${r.id}`;
        const plain = reopen(current, r.payload, aad, `jobs row ${r.id}`);
        await tx.query('UPDATE jobs SET payload = $1 WHERE id = $2', [next.seal(plain, aad), r.id]);
        result.jobs++;
      }
      if (rows.length < page) break;
      after = rows[rows.length - 1]!.id;
    }

    await tx.query('UPDATE store_meta SET value = $1 WHERE name = $2', [next.keyCheckValue(), 'key_check']);
    return result;
  }, { exclusive: true });
}

function reopen(cipher: DataCipher, sealed: string, aad: string, where: string): string {
  try {
    return cipher.open(sealed, aad);
  } catch (e) {
    if (!(e instanceof SealedValueError)) throw e;
    throw new AppError('internal', `${where}: its sealed value does not open with the current key (altered or damaged); the rotation was rolled back and nothing was changed (repair or delete that row, then rotate again)`);
  }
}

/** When a heartbeat row was written (0 when unreadable). */
export function heartbeatAt(value: string): number {
  try {
    const at = (JSON.parse(value) as { at?: unknown }).at;
    return typeof at === 'number' ? at : 0;
  } catch {
    return 0;
  }
}

/** The rotation knows this build's tables: the database must be at exactly this build's schema version. */
async function checkSchema(tx: SqlExec, where: string): Promise<void> {
  const known = Math.max(...MIGRATIONS.map((m) => m.version));
  let newest = 0;
  try {
    const { rows } = await tx.query<{ v: number | string | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    newest = Number(rows[0]?.v ?? 0);
  } catch {
    newest = 0;
  }
  if (newest === 0) throw new AppError('config_invalid', `${where}: no volmo-cds schema there (wrong VOLMO_DATABASE_URL?): there is nothing to rotate`);
  if (newest !== known) {
    throw new AppError(
      'config_invalid',
      `${where}: the schema is at version ${newest}, this build's is ${known}: ${newest < known ? 'start this build once (it migrates), stop it, then rotate' : 'rotate with the newer volmo-cds that wrote it'}`,
    );
  }
}
