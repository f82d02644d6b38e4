/**
 * A CDS client that behaves like an EHR: signs each hook call with a JWT (iss, aud = exact service URL,
 * exp, iat, jti, kid, jku; ES384 or RS384), publishes its JWK Set at a loopback URL, and sends
 * fhirServer + fhirAuthorization + prefetch — each of which can be left out to exercise fallbacks.
 * Used by the sandbox, `npm run demo` and the tests.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

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
  /** Sign with a different, untrusted key (bad-signature tests). */
  rogueKey?: boolean;
  omitJku?: boolean;
}

export interface EhrSimulator {
  iss: string;
  jku: string;
  alg: EhrAlg;
  publicJwks(): { keys: JWK[] };
  signJwt(aud: string, opts?: SignOptions): Promise<string>;
  /** Sends the hook call and returns the HTTP status and parsed body (body is null when empty). */
  callHook(call: HookCall, opts?: SignOptions & { unsigned?: boolean; signal?: AbortSignal }): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

export async function startEhrSimulator(opts: { alg?: EhrAlg; iss?: string; host?: string; port?: number } = {}): Promise<EhrSimulator> {
  const alg = opts.alg ?? 'ES384';
  const kid = `ehr-sim-${alg.toLowerCase()}-1`;
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const rogue = await generateKeyPair(alg);
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const jwks = { keys: [publicJwk] };

  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://${opts.host ?? '127.0.0.1'}:${port}`;
  const iss = opts.iss ?? `${base}/ehr`;
  const jku = `${base}/.well-known/jwks.json`;

  const signJwt = async (aud: string, o: SignOptions = {}) => {
    const now = Math.floor(Date.now() / 1000) + (o.iatOffsetSeconds ?? 0);
    const header: Record<string, string> = { alg, kid, typ: 'JWT' };
    if (!o.omitJku) header.jku = jku;
    return new SignJWT({})
      .setProtectedHeader(header as never)
      .setIssuer(iss)
      .setAudience(o.aud ?? aud)
      .setIssuedAt(now)
      .setExpirationTime(now + (o.expiresInSeconds ?? 300))
      .setJti(o.jti ?? randomUUID())
      .sign(o.rogueKey ? rogue.privateKey : privateKey);
  };

  return {
    iss,
    jku,
    alg,
    publicJwks: () => jwks,
    signJwt,
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
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
