/**
 * Hooks part of `npm run bench`: CDS Hooks at EHR speed. The real service with its sandbox and the tiny test
 * model, called by autocannon from a second process (bench/hooks-load.mjs) with a distinct EHR-signed ES384
 * JWT per request and the prefetch sent, at 1, 16 and 64 connections, for
 *   (a) a patient whose analysis has finished, (b) a patient not analysed yet, (c) an order that is no eye order,
 * side by side with the ceiling measured in the same run: a bare express handler that verifies the same kind
 * of JWT the same way (jose, key in memory) and returns a constant card for the same body.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import type { SandboxedService } from '../src/sandbox/service.js';
import { startServiceWithSandbox } from '../src/sandbox/service.js';
import { loadSandboxSettings } from '../src/sandbox/settings.js';
import { ehrToken, fixturePatientId, sandboxHookCall } from '../src/sandbox/ehr-access.js';
import type { EhrSimulator, HookCall } from '../src/sandbox/ehr-simulator.js';
import { listFixturePatients } from '../src/sandbox/fixtures.js';
import { draftOrders, nonEyeOrder } from '../src/sandbox/orders.js';
import type { BenchTable } from './table.js';

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  total: number;
}

const CONNECTIONS = [1, 16, 64];

/** Runs one step from a second process; `aud` is the URL the tokens are signed for. */
export async function load(ehr: EhrSimulator, url: string, aud: string, body: string, connections: number, requests: number, durationS: number): Promise<LoadResult> {
  const tokens = await Promise.all(Array.from({ length: requests }, () => ehr.signJwt(aud)));
  const file = join(mkdtempSync(join(tmpdir(), 'volmo-bench-hooks-')), 'spec.json');
  writeFileSync(file, JSON.stringify({ url, connections, durationS, body, tokens }));
  // Asynchronously: the service and the ceiling answer from this process's event loop meanwhile.
  const child = spawn(process.execPath, ['bench/hooks-load.mjs', file], { stdio: ['ignore', 'pipe', 'pipe'], timeout: (durationS + 60) * 1000 });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`load generator failed (${code}): ${err}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as LoadResult;
}

/** The least any correct CDS service does: verify the ES384 JWT (key in memory, same checks) and answer a constant card. */
async function startCeiling(ehr: EhrSimulator): Promise<{ url: string; close(): void }> {
  const keys = createLocalJWKSet(ehr.publicJwks() as never);
  const app = express();
  app.use(express.json({ limit: '5mb' }));
  let aud = '';
  app.post('/cds-services/ceiling', async (req, res) => {
    try {
      await jwtVerify(/^Bearer (.+)$/.exec(req.get('authorization') ?? '')![1]!, keys, { issuer: ehr.iss, audience: aud, algorithms: ['ES384'], requiredClaims: ['jti', 'exp', 'iat'] });
    } catch {
      res.status(401).end();
      return;
    }
    res.json({ cards: [{ uuid: '0f9c6a30-1a43-4b36-9e8a-1f3f0a7d9b11', summary: 'constant', indicator: 'info', source: { label: 'ceiling' } }] });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cds-services/ceiling`;
  aud = url;
  return { url, close: () => server.close() };
}

export async function untilAnalysed(svc: SandboxedService, call: HookCall): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const res = await svc.sandbox!.ehr.callHook(call);
    const cards = (res.body as { cards?: { summary: string }[] }).cards ?? [];
    if (cards.length && !/in progress/.test(cards[0]!.summary)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('the analysis did not finish');
}

export async function runHooksBench(args: string[]): Promise<BenchTable[]> {
  const durationS = Number(args.find((a) => a.startsWith('--duration='))?.split('=')[1] ?? 8);
  const root = mkdtempSync(join(tmpdir(), 'volmo-bench-hooks-'));
  // Without VOLMO_MODEL_DIR the sandbox builds and loads its tiny random-weight test model (as `npm start` does).
  const env = {
    VOLMO_PORT: '0', VOLMO_SANDBOX_FHIR_PORT: '0', VOLMO_SANDBOX_AUTH_PORT: '0', VOLMO_SANDBOX_EHR_PORT: '0', VOLMO_SANDBOX_PACS_PORT: '0',
    VOLMO_SANDBOX_STATE_DIR: join(root, 'state'), VOLMO_LOG_LEVEL: 'silent', VOLMO_WATCH: 'false',
  };
  const svc = await startServiceWithSandbox(loadConfig(env), loadSandboxSettings(env), silentLogger());
  const sb = svc.sandbox!;
  const ceiling = await startCeiling(sb.ehr);
  try {
    const token = await ehrToken(sb.fhirBaseUrl, sb.ehr);
    const patient = async (key: string) => fixturePatientId(sb.fhirBaseUrl, token.access_token, listFixturePatients().find((p) => p.key === key)!.mrn);
    const call = async (key: string, hook: 'order-sign' | 'patient-view') => sandboxHookCall({ serviceBaseUrl: svc.url, fhirBaseUrl: sb.fhirBaseUrl, token, patientId: await patient(key), hook, prefetch: true, withToken: true });
    const analysed = await call('diabetic', 'order-sign');
    await untilAnalysed(svc, analysed);
    const fresh = await call('glaucoma', 'order-sign'); // not analysed: its first request starts the (background) analysis
    const nonEye = await call('amd', 'order-sign');
    nonEye.context = { ...nonEye.context, draftOrders: draftOrders(nonEyeOrder(String(nonEye.context.patientId))) };
    const bodyOf = (c: HookCall) => JSON.stringify({ hook: c.hook, hookInstance: '4b3a7c52-46f5-4a1f-9d0e-0a1b2c3d4e5f', fhirServer: c.fhirServer, fhirAuthorization: c.fhirAuthorization, context: c.context, prefetch: c.prefetch });

    const scenarios: [string, HookCall][] = [['(a) analysis finished', analysed], ['(b) not analysed yet', fresh], ['(c) not an eye order', nonEye]];
    const rows: (string | number)[][] = [];
    const targets: string[] = [];
    for (const connections of CONNECTIONS) {
      const requests = Math.max(200, connections * 60);
      const body = bodyOf(analysed);
      const base = await load(sb.ehr, ceiling.url, ceiling.url, body, connections, requests, durationS);
      rows.push(['ceiling (bare express + jose)', connections, base.rps.toFixed(0), base.p50, base.p99, '1.00x', '1.00x', base.non2xx + base.errors]);
      for (const [name, c] of scenarios) {
        const r = await load(sb.ehr, c.serviceUrl, c.serviceUrl, bodyOf(c), connections, requests, durationS);
        const rpsRatio = r.rps / base.rps;
        const p99Ratio = r.p99 / Math.max(base.p99, 1);
        rows.push([name, connections, r.rps.toFixed(0), r.p50, r.p99, `${rpsRatio.toFixed(2)}x`, `${p99Ratio.toFixed(2)}x`, r.non2xx + r.errors]);
        if (connections === 64) targets.push(`${name} @64: rps ${rpsRatio >= 0.5 ? 'met' : 'NOT met'} (${rpsRatio.toFixed(2)}x >= 0.5x), p99 ${p99Ratio <= 2 ? 'met' : 'NOT met'} (${p99Ratio.toFixed(2)}x <= 2x)`);
        if (connections === 16) targets.push(`${name} @16: p99 ${r.p99 <= 50 ? 'met' : 'NOT met'} (${r.p99} ms <= 50 ms)`);
      }
    }
    return [
      {
        title: `CDS hooks under load (autocannon from a second process, one EHR-signed ES384 JWT per request, prefetch sent; up to ${durationS} s per step)`,
        columns: ['scenario', 'connections', 'requests/s', 'p50 ms', 'p99 ms', 'rps vs ceiling', 'p99 vs ceiling', 'non-2xx + errors'],
        rows,
        notes: ['baseline: the ceiling row above each group, measured in the same run with the same body and the same kind of token', ...targets],
      },
    ];
  } finally {
    ceiling.close();
    await svc.close();
  }
}
