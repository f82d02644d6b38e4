/** HTTPS through the guard: the socket goes to the checked IP, while SNI and the certificate check use the host name. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuardedFetch } from '../../src/net/guarded-fetch.js';
import { NetError } from '../../src/net/net-error.js';

let hasOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  hasOpenssl = false;
}

describe.skipIf(!hasOpenssl)('guarded fetch over https', () => {
  let server: https.Server;
  let port = 0;
  let cert = '';
  const seenServername: string[] = [];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volmo-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=fhir.test',
      '-addext', 'subjectAltName=DNS:fhir.test', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ host: req.headers.host }));
    });
    server.on('secureConnection', (s) => seenServername.push(String((s as unknown as { servername?: string }).servername)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('connects to the pinned address with SNI and certificate name of the host', async () => {
    const gf = createGuardedFetch({ allow: [{ prefix: `https://fhir.test:${port}`, allowPrivateNetwork: true }], ca: cert, resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
    const res = await gf(`https://fhir.test:${port}/metadata`);
    expect(JSON.parse(res.text())).toEqual({ host: `fhir.test:${port}` });
    expect(seenServername.at(-1)).toBe('fhir.test');
    gf.close();
  });

  it('fails closed when the certificate does not match the host name', async () => {
    const gf = createGuardedFetch({ allow: [{ prefix: `https://other.test:${port}`, allowPrivateNetwork: true }], ca: cert, resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
    const err = await gf(`https://other.test:${port}/metadata`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetError);
    expect((err as NetError).reason).toBe('network');
    gf.close();
  });

  it('fails closed on an untrusted certificate', async () => {
    const gf = createGuardedFetch({ allow: [`https://127.0.0.1:${port}`] });
    const err = await gf(`https://127.0.0.1:${port}/metadata`).catch((e: unknown) => e);
    expect((err as NetError).reason).toBe('network');
    gf.close();
  });
});
