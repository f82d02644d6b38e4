/**
 * PHI at rest: the data key (VOLMO_DATA_KEY_FILE) and per-column AES-256-GCM sealing (node:crypto).
 *
 * The file holds 32 random bytes: raw, as 64 hex characters, or as base64. Two subkeys are derived from it
 * with HKDF-SHA256: one encrypts (AES-256-GCM, 96-bit random IV, 128-bit tag, the row's identity as
 * additional data so a sealed value cannot be moved to another row), one keys the HMAC that stands in for
 * a patient subject in lookups. A key check value (a sealed constant) is kept in the database: a start with
 * another key fails at once with a clear message instead of failing to read rows later.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AppError } from '../errors.js';

const VERSION = 'v1';
const KEY_CHECK_PLAINTEXT = 'volmo data key check v1';
const KEY_CHECK_AAD = 'volmo:key-check';

/** A sealed value could not be opened: wrong key, or the value was altered. Never carries the value. */
export class SealedValueError extends Error {
  constructor(what: string) {
    super(`a stored ${what} could not be decrypted with the data key (wrong key or altered data)`);
    this.name = 'SealedValueError';
  }
}

export class DataCipher {
  private readonly encKey: Buffer;
  private readonly macKey: Buffer;
  /** First 8 hex characters of sha256(key): names the key in messages without revealing it. */
  readonly fingerprint: string;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError('the data key must be 32 bytes');
    this.encKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'volmo store encryption v1', 32));
    this.macKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'volmo store lookup mac v1', 32));
    this.fingerprint = createHash('sha256').update(key).digest('hex').slice(0, 8);
  }

  /** `v1.<base64url(iv | tag | ciphertext)>`; `aad` binds it to its row (table and id). */
  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.encKey, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${VERSION}.${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64url')}`;
  }

  open(sealed: string, aad: string, what = 'value'): string {
    const [version, body] = sealed.split('.', 2);
    if (version !== VERSION || !body) throw new SealedValueError(what);
    const raw = Buffer.from(body, 'base64url');
    if (raw.length < 28) throw new SealedValueError(what);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.encKey, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      throw new SealedValueError(what);
    }
  }

  /** Keyed hash for equality lookups of values that must not be stored in clear (patient subjects). */
  mac(value: string): string {
    return createHmac('sha256', this.macKey).update(value, 'utf8').digest('hex');
  }

  /** The key check value stored in the database. */
  keyCheckValue(): string {
    return this.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD);
  }

  /** Whether `stored` (a key check value) was written with this key. */
  matchesKeyCheck(stored: string): boolean {
    try {
      return this.open(stored, KEY_CHECK_AAD) === KEY_CHECK_PLAINTEXT;
    } catch {
      return false;
    }
  }
}

/** Parses a key file's bytes: 32 raw bytes, 64 hex characters, or base64 of 32 bytes (whitespace ignored). */
export function parseDataKey(bytes: Uint8Array): Buffer | undefined {
  if (bytes.length === 32) return Buffer.from(bytes);
  const text = Buffer.from(bytes).toString('utf8').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const b = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (b.length === 32) return b;
  }
  return undefined;
}

/**
 * Reads the data key. With `generate` (not in production) a missing file is created with a new random key
 * (mode 0600); two processes starting at once end up with the same key (exclusive create, then read).
 */
export async function loadDataKey(file: string, opts: { generate: boolean }): Promise<{ key: Buffer; generated: boolean }> {
  const read = async () => {
    const key = parseDataKey(await readFile(file));
    if (!key) throw new AppError('config_invalid', `VOLMO_DATA_KEY_FILE: ${file} does not hold a 32-byte key (raw, 64 hex characters or base64; e.g. openssl rand -hex 32 > ${file})`);
    return key;
  };
  try {
    return { key: await read(), generated: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (e instanceof AppError) throw e;
      throw new AppError('config_invalid', `VOLMO_DATA_KEY_FILE: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!opts.generate) throw new AppError('config_invalid', `VOLMO_DATA_KEY_FILE: ${file} does not exist (create one: openssl rand -hex 32 > ${file}; chmod 600 ${file})`);
  }
  await mkdir(dirname(file), { recursive: true });
  try {
    await writeFile(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    return { key: await read(), generated: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return { key: await read(), generated: false };
    throw new AppError('config_invalid', `VOLMO_DATA_KEY_FILE: cannot create ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
