/**
 * This service's signing keys for SMART Backend Services client assertions (RS384 or ES384), from a PEM or
 * JWK file in config or generated for development, and the public JWKS the app serves at a stable URL
 * (e.g. /.well-known/jwks.json) for EHRs to fetch.
 */
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, importPKCS8, type CryptoKey, type JWK } from 'jose';
import { AppError } from '../errors.js';

export type SigningAlg = 'RS384' | 'ES384';

export interface ServiceKey {
  readonly alg: SigningAlg;
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** Public part only, with kid/alg/use set. */
  readonly publicJwk: Readonly<JWK>;
}

export interface ServiceKeySource {
  /** PKCS#8 PEM text or a private JWK (object or JSON text). */
  readonly pem?: string;
  readonly jwk?: JWK | string;
  /** Path to a .pem or .json/.jwk file. */
  readonly file?: string;
  readonly alg?: SigningAlg;
  /** Defaults to the RFC 7638 thumbprint of the public key. */
  readonly kid?: string;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

async function toServiceKey(privateKey: CryptoKey, publicSource: JWK, alg: SigningAlg, kid?: string): Promise<ServiceKey> {
  const pub: JWK = Object.fromEntries(Object.entries(publicSource).filter(([k]) => !PRIVATE_MEMBERS.includes(k)));
  delete pub.key_ops;
  delete pub.ext;
  const id = kid ?? (await calculateJwkThumbprint(pub, 'sha256'));
  return Object.freeze({ alg, kid: id, privateKey, publicJwk: Object.freeze({ ...pub, kid: id, alg, use: 'sig' }) });
}

function algForJwk(jwk: JWK, fallback?: SigningAlg): SigningAlg {
  if (fallback) return fallback;
  if (jwk.alg === 'RS384' || jwk.alg === 'ES384') return jwk.alg as SigningAlg;
  if (jwk.kty === 'EC') return 'ES384';
  if (jwk.kty === 'RSA') return 'RS384';
  throw new AppError('config_invalid', 'service key must be an RSA or EC (P-384) key');
}

/** Loads a private key from config. Errors name the problem, never the key material. */
export async function loadServiceKey(src: ServiceKeySource): Promise<ServiceKey> {
  let pem = src.pem;
  let jwk = src.jwk;
  if (src.file !== undefined) {
    let text: string;
    try {
      text = await readFile(src.file, 'utf8');
    } catch (cause) {
      throw new AppError('config_invalid', 'service key file could not be read', { cause: { code: (cause as NodeJS.ErrnoException).code } });
    }
    if (text.includes('-----BEGIN')) pem = text;
    else jwk = text;
  }
  try {
    if (pem !== undefined) {
      if (!pem.includes('BEGIN PRIVATE KEY')) throw new AppError('config_invalid', 'service key PEM must be PKCS#8 (BEGIN PRIVATE KEY)');
      const alg = src.alg ?? (await guessPemAlg(pem));
      const key = await importPKCS8(pem, alg, { extractable: true });
      return await toServiceKey(key, await exportJWK(key), alg, src.kid);
    }
    if (jwk !== undefined) {
      const obj: JWK = typeof jwk === 'string' ? (JSON.parse(jwk) as JWK) : jwk;
      if (obj.d === undefined) throw new AppError('config_invalid', 'service key JWK has no private part (d)');
      const alg = algForJwk(obj, src.alg);
      if (obj.kty === 'EC' && obj.crv !== 'P-384') throw new AppError('config_invalid', 'ES384 needs a P-384 key');
      const key = (await importJWK(obj, alg)) as CryptoKey;
      return await toServiceKey(key, obj, alg, src.kid ?? obj.kid);
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError('config_invalid', 'service key could not be imported', { cause: { name: (err as Error).name } });
  }
  throw new AppError('config_invalid', 'no service key given (pem, jwk or file)');
}

async function guessPemAlg(pem: string): Promise<SigningAlg> {
  try {
    await importPKCS8(pem, 'ES384');
    return 'ES384';
  } catch {
    return 'RS384';
  }
}

/** A fresh key pair for development and tests (never persisted by this function). */
export async function generateServiceKey(alg: SigningAlg = 'ES384'): Promise<ServiceKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return toServiceKey(privateKey, await exportJWK(publicKey), alg);
}

/** The public JWK Set to serve (current key first; keep the previous one listed during rotation). */
export function publicJwks(...keys: readonly ServiceKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => ({ ...k.publicJwk })) };
}
