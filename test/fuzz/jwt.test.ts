/**
 * Seeded fuzzing of the CDS client JWT verifier: tokens signed with the trusted key but with hostile headers
 * and claims, and byte-level mutations of a valid token. Every refusal is a CdsAuthError (a bare 401); a token
 * is accepted only when its claims are what the spec requires.
 */
import fc from 'fast-check';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { CdsAuthError, CdsJwtVerifier, normaliseAudience } from '../../src/cds/jwt-verifier.js';
import { MemoryReplayCache } from '../../src/cds/replay-cache.js';
import { fuzzRuns, hostileLeaf, mutated } from './arbitraries.js';

const ISS = 'https://ehr.example.org/fhir';
const AUD = 'https://cds.example.org/cds-services/volmo-eye-exam-order-sign';
let key: CryptoKey;
let verifier: CdsJwtVerifier;
let now: number;

beforeAll(async () => {
  const pair = await generateKeyPair('ES384', { extractable: true });
  key = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES384' };
  verifier = new CdsJwtVerifier({ clients: [{ iss: ISS, jku: [], jwks: { keys: [jwk] } }], replay: new MemoryReplayCache(), clockSkewSeconds: 60 });
  now = Math.floor(Date.now() / 1000);
});

/** Signs any header and payload (hostile types included) with the trusted key. */
async function sign(header: unknown, payload: unknown): Promise<string> {
  const h = { ...(header && typeof header === 'object' ? header : {}), alg: 'ES384' } as { alg: string };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload) ?? 'null')).setProtectedHeader(h).sign(key);
}

async function outcome(token: string): Promise<'accepted' | 'refused'> {
  try {
    const claims = await verifier.verify(`Bearer ${token}`, [AUD]);
    // Accepted only with the claims the spec requires.
    expect(claims.iss).toBe(ISS);
    expect(typeof claims.jti === 'string' && claims.jti.length > 0).toBe(true);
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    expect(aud.some((a) => typeof a === 'string' && normaliseAudience(a) === normaliseAudience(AUD))).toBe(true);
    expect(typeof claims.exp === 'number' && claims.exp > now - 120).toBe(true);
    return 'accepted';
  } catch (e) {
    if (e instanceof CdsAuthError) return 'refused';
    throw e; // anything else would be a 500
  }
}

const goodHeader = () => ({ kid: 'k1', typ: 'JWT' });
const goodClaims = () => ({ iss: ISS, aud: AUD, iat: now, exp: now + 300, jti: `j-${Math.random()}` });

describe('fuzz: CDS client JWT verifier', () => {
  it('hostile headers and claims signed with the trusted key: a 401 or a conformant token, nothing else (600 cases)', async () => {
    await fc.assert(
      fc.asyncProperty(mutated([goodHeader()], 2), mutated([goodClaims()], 3), fc.option(hostileLeaf, { nil: undefined }), async (header, claims, jti) => {
        const payload = jti === undefined || !claims || typeof claims !== 'object' ? claims : { ...(claims as object), jti };
        await outcome(await sign(header, payload));
      }),
      fuzzRuns(600),
    );
  });

  it('byte-level mutations of a valid token are refused (600 cases)', async () => {
    const valid = await sign(goodHeader(), { ...goodClaims(), jti: 'the-one' });
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: valid.length - 1 }), fc.string({ minLength: 1, maxLength: 3 }), fc.constantFrom('replace', 'insert', 'truncate', 'dot'), async (at, s, op) => {
        const t = op === 'replace' ? valid.slice(0, at) + s + valid.slice(at + s.length) : op === 'insert' ? valid.slice(0, at) + s + valid.slice(at) : op === 'truncate' ? valid.slice(0, at) : `${valid}.${s}`;
        if (t === valid) return;
        // A base64url change may decode to the same bytes only in the last character's padding bits.
        const r = await outcome(t);
        if (r === 'accepted') expect(t.slice(0, -1)).toBe(valid.slice(0, -1));
      }),
      fuzzRuns(600),
    );
  });
});
