/**
 * A CDS client that behaves like an EHR: signs each hook call with a JWT (iss, aud = exact service URL,
 * exp, iat, jti, kid, jku; ES384 or RS384), publishes its JWK Set at a loopback URL, and sends
 * fhirServer + fhirAuthorization + prefetch — each of which can be left out to exercise fallbacks.
 * Used by the sandbox, `npm run demo` and the tests.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK, type JWTHeaderParameters } from 'jose';

export type EhrAlg = 'ES384' | 'RS384';

export interface HookCall {
  /** e.g. http://127.0.0.1:8080/cds-services/volmo-eye-exam-order-sign */
  serviceUrl: string;
  hook: 'patient-view' | 'order-select' | 'order-sign';
  context: Record<string, unknown>;
  fhirServer?: string;
  fhirAuthorization?: { access_token: string; token_type: 'Bearer'; expires_in: number; scope: string; subject: string; patient?: string };
  prefetch?: Record<string, unknown>;
}

export interface SignOptions {
  aud?: string;
  expiresInSeconds?: number;
  iatOffsetSeconds?: number;
  jti?: string;
  /** A `jku` header other than the simulator's own key-set URL. */
  jku?: string;
  /** Claims set after the standard ones (hostile-client tests: e.g. a numeric jti). */
  extraClaims?: Record<string, unknown>;
  /** Sign with a different, untrusted key (bad-signature tests). */
  rogueKey?: boolean;
  omitJku?: boolean;
}

export interface EhrSimulator {
  iss: string;
  /** `http://host:port` of the simulator's server (its JWKS, and the sandbox EHR page when one is set). */
  origin: string;
  /** Serves every request other than the JWKS (the sandbox EHR page, src/sandbox/ehr-page/). */
  setPageHandler(handler: RequestListener): void;
  jku: string;
  alg: EhrAlg;
  publicJwks(): { keys: JWK[] };
  signJwt(aud: string, opts?: SignOptions): Promise<string>;
  /** A private_key_jwt client assertion for the EHR's own OAuth client (to obtain fhirAuthorization tokens). */
  clientAssertion(tokenUrl: string, clientId: string): Promise<string>;
  /** Sends the hook call and returns the HTTP status and parsed body (body is null when empty). */
  callHook(call: HookCall, opts?: SignOptions & { unsigned?: boolean; signal?: AbortSignal }): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

export interface EhrSimulatorOptions {
  alg?: EhrAlg;
  iss?: string;
  host?: string;
  /** Port of the JWKS server; 0 = ephemeral. */
  port?: number;
  /** Keep the signing key in this file (created on first use) so another process can sign as the same EHR. */
  keyFile?: string;
  /** false: do not serve the JWKS (a second process signing for an EHR whose JWKS is served elsewhere). */
  serveJwks?: boolean;
}

async function loadOrCreateKey(alg: EhrAlg, keyFile: string | undefined): Promise<{ privateKey: CryptoKey; publicJwk: JWK }> {
  if (keyFile) {
    try {
      const jwk = JSON.parse(readFileSync(keyFile, 'utf8')) as JWK;
      if (jwk.alg === alg) {
        const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
        return { privateKey: (await importJWK(jwk, alg)) as CryptoKey, publicJwk: pub };
      }
    } catch {
      // no key yet: create one below
    }
  }
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), alg, use: 'sig' };
  if (keyFile) {
    mkdirSync(dirname(keyFile), { recursive: true });
    writeFileSync(keyFile, JSON.stringify({ ...(await exportJWK(privateKey)), alg, use: 'sig' }), { mode: 0o600 });
  }
  return { privateKey, publicJwk };
}

export async function startEhrSimulator(opts: EhrSimulatorOptions = {}): Promise<EhrSimulator> {
  const alg = opts.alg ?? 'ES384';
  const kid = `ehr-sim-${alg.toLowerCase()}-1`;
  const { privateKey, publicJwk: pub } = await loadOrCreateKey(alg, opts.keyFile);
  const rogue = await generateKeyPair(alg);
  const publicJwk = { ...pub, kid };
  const jwks = { keys: [publicJwk] };

  let pageHandler: RequestListener | undefined;
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    } else if (pageHandler) {
      pageHandler(req, res);
    } else {
      res.writeHead(404).end();
    }
  });
  let port = opts.port ?? 0;
  if (opts.serveJwks !== false) {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, opts.host ?? '127.0.0.1', resolve);
    });
    port = (server.address() as AddressInfo).port;
  }
  const base = `http://${opts.host ?? '127.0.0.1'}:${port}`;
  const iss = opts.iss ?? `${base}/ehr`;
  const jku = `${base}/.well-known/jwks.json`;

  const signJwt = async (aud: string, o: SignOptions = {}) => {
    const now = Math.floor(Date.now() / 1000) + (o.iatOffsetSeconds ?? 0);
    const header: JWTHeaderParameters = { alg, kid, typ: 'JWT' };
    if (!o.omitJku) header.jku = o.jku ?? jku;
    const claims = { iss, aud: o.aud ?? aud, iat: now, exp: now + (o.expiresInSeconds ?? 300), jti: o.jti ?? randomUUID(), ...o.extraClaims };
    const jwt = new SignJWT(claims).setProtectedHeader(header);
    return jwt.sign(o.rogueKey ? rogue.privateKey : privateKey);
  };

  return {
    iss,
    origin: base,
    setPageHandler: (handler) => {
      pageHandler = handler;
    },
    jku,
    alg,
    publicJwks: () => jwks,
    signJwt,
    clientAssertion: (tokenUrl, clientId) =>
      new SignJWT({})
        .setProtectedHeader({ alg, kid, typ: 'JWT' })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(tokenUrl)
        .setIssuedAt()
        .setExpirationTime('4m')
        .setJti(randomUUID())
        .sign(privateKey),
    async callHook(call, o = {}) {
      const body: Record<string, unknown> = { hook: call.hook, hookInstance: randomUUID(), context: call.context };
      if (call.fhirServer) body.fhirServer = call.fhirServer;
      if (call.fhirAuthorization) body.fhirAuthorization = call.fhirAuthorization;
      if (call.prefetch) body.prefetch = call.prefetch;
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
      if (!o.unsigned) headers.authorization = `Bearer ${await signJwt(call.serviceUrl, o)}`;
      const res = await fetch(call.serviceUrl, { method: 'POST', headers, body: JSON.stringify(body), signal: o.signal });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
    },
    close: () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
  };
}
