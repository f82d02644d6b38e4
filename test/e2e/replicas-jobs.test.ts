/**
 * Two replicas on one PostgreSQL (a fresh schema), as two `node bin/volmo.js serve` processes on loopback
 * ports, with the tiny test model, in front of the sandbox's FHIR server (started apart, images as FHIR
 * attachments, so a job re-reads them with the hook's sealed token): hook calls spread over both start one
 * job and one analysis; the replica that claimed the job is SIGKILLed mid-job and the other claims it once
 * the (short) lease has run out and finishes it; the killed replica, started again, has lost nothing. The
 * replicas share one Backend Services key (registered with the sandbox auth server) and write the AI draft
 * back in the background (VOLMO_WRITEBACK_BACKGROUND, fhir-standard): exactly one draft report reaches the
 * sandbox FHIR server, whichever replicas saw the analysis finish.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { exportJWK, generateKeyPair, type JSONWebKeySet } from 'jose';
import { parseSearchRequest } from '@medplum/core';
import { loadServiceKey, publicJwks } from '../../src/fhir/service-keys.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYSIS_EXTENSION } from '../../src/cds/cards.js';
import type { CdsCard } from '../../src/cds/types.js';
import { silentLogger } from '../../src/log.js';
import { ehrToken, fixturePatientId, type EhrToken } from '../../src/sandbox/ehr-access.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { loadSandboxSettings } from '../../src/sandbox/settings.js';
import { buildTiny } from '../model/model-harness.js';
import { dropSchema, newSchemaName, postgresAvailable, POSTGRES_URL, postgresUrl, writeKeyFile } from '../store/helpers.js';
import { freePort } from '../helpers/free-port.js';
import { until } from '../helpers/until.js';

const SERVICE = 'volmo-eye-exam-order-sign';
const LEASE_MS = 6000;
const pgUp = await postgresAvailable();

interface Replica {
  name: string;
  port: number;
  url: string;
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
}

const dir = mkdtempSync(join(tmpdir(), 'volmo-replicas-'));
const keyFile = writeKeyFile(dir);
const serviceKeyFile = join(dir, 'service-key.jwk.json');
const schema = newSchemaName();
let modelDir: string;
let sb: Sandbox;
let token: EhrToken;
let patientId: string;
const replicas: Replica[] = [];
let db: pg.Client;

async function spawnReplica(name: string, port: number): Promise<Replica> {
  const child = spawn(process.execPath, ['bin/volmo.js', 'serve'], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      VOLMO_SANDBOX: 'false',
      VOLMO_HOST: '127.0.0.1',
      VOLMO_PORT: String(port),
      VOLMO_PUBLIC_URL: `http://127.0.0.1:${port}`,
      VOLMO_LOG_LEVEL: 'info',
      VOLMO_MODEL_DIR: modelDir,
      VOLMO_FHIR_ALLOWLIST: sb.fhirBaseUrl,
      VOLMO_CDS_CLIENTS: JSON.stringify([{ iss: sb.ehr.iss, jku: [sb.ehr.jku], fhirServers: [sb.fhirBaseUrl] }]),
      VOLMO_DATABASE_URL: postgresUrl(schema),
      VOLMO_DATA_KEY_FILE: keyFile,
      VOLMO_SERVICE_KEY_FILE: serviceKeyFile,
      VOLMO_SMART_AUTH_ALLOWLIST: sb.outboundAllowlist.join(','),
      VOLMO_WRITEBACK_PROFILES: JSON.stringify({ [sb.fhirBaseUrl]: 'fhir-standard' }),
      VOLMO_WRITEBACK_BACKGROUND: sb.fhirBaseUrl,
      VOLMO_JOB_LEASE_MS: String(LEASE_MS),
      VOLMO_JOB_POLL_MS: '200',
      VOLMO_SHUTDOWN_GRACE_MS: '1000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r: Replica = { name, port, url: `http://127.0.0.1:${port}`, child, lines: [], exited: new Promise((res) => child.on('exit', (code) => res(code))) };
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        r.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.resume();
  replicas.push(r);
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`replica ${name} exited with ${child.exitCode}`);
    const ok = await fetch(`${r.url}/readyz`).then((res) => res.ok, () => false);
    if (ok && r.lines.some((l) => l.msg === 'job runner on: this replica runs queued analyses')) return r;
    if (Date.now() > deadline) throw new Error(`replica ${name} not ready in time`);
    await new Promise((res) => setTimeout(res, 250));
  }
}


async function callHook(r: Replica): Promise<{ status: number; cards: CdsCard[] }> {
  const res = await sb.ehr.callHook({
    serviceUrl: `${r.url}/cds-services/${SERVICE}`,
    hook: 'order-sign',
    context: { userId: 'Practitioner/sandbox-practitioner', patientId, draftOrders: draftOrders(eyeExamOrder(patientId)) },
    fhirServer: sb.fhirBaseUrl,
    fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
  });
  return { status: res.status, cards: (res.body as { cards?: CdsCard[] } | null)?.cards ?? [] };
}

const rows = async (sql: string) => (await db.query(sql)).rows as Record<string, unknown>[];

beforeAll(async () => {
  if (!pgUp) return;
  modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-replicas-model-')) })).outDir;
  const settings = loadSandboxSettings({ VOLMO_SANDBOX_FHIR_PORT: '0', VOLMO_SANDBOX_AUTH_PORT: '0', VOLMO_SANDBOX_EHR_PORT: '0', VOLMO_SANDBOX_PACS: 'none', VOLMO_SANDBOX_STATE_DIR: join(dir, 'sandbox') });
  // One Backend Services key for every replica, its public half registered with the sandbox auth server.
  const { privateKey } = await generateKeyPair('ES384', { extractable: true });
  writeFileSync(serviceKeyFile, JSON.stringify(await exportJWK(privateKey)), { mode: 0o600 });
  const backendJwks = publicJwks(await loadServiceKey({ file: serviceKeyFile })) as JSONWebKeySet;
  sb = await startSandbox({ settings, publicUrl: 'http://127.0.0.1:9', log: silentLogger(), backendJwks });
  token = await ehrToken(sb.fhirBaseUrl, sb.ehr);
  patientId = await fixturePatientId(sb.fhirBaseUrl, token.access_token, listFixturePatients().find((p) => p.key === 'diabetic')!.mrn);
  db = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
  await db.connect();
}, 180_000);

afterAll(async () => {
  for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await Promise.all(replicas.map((r) => r.exited));
  await db?.end().catch(() => undefined);
  await sb?.stop();
  if (pgUp) await dropSchema(schema);
}, 60_000);

describe.skipIf(!pgUp)('two replicas on one PostgreSQL', () => {
  let a: Replica;
  let b: Replica;
  let analysisId: unknown;

  it('hook calls spread over both replicas queue one job; a replica killed mid-job is replaced once its lease runs out', async () => {
    [a, b] = await Promise.all([freePort().then((p) => spawnReplica('a', p)), freePort().then((p) => spawnReplica('b', p))]);
    const answers = await Promise.all([a, b, a, b, a, b].map((r) => callHook(r)));
    for (const ans of answers) {
      expect(ans.status).toBe(200);
      expect(ans.cards).toHaveLength(1);
    }
    const named = new Set(answers.map((ans) => ans.cards[0]!.extension?.[ANALYSIS_EXTENSION]));
    expect(named.size).toBe(1); // every card names the same analysis
    analysisId = [...named][0];
    expect(await rows('SELECT id FROM jobs')).toEqual([{ id: analysisId }]);

    // Whichever replica claimed it is killed as soon as it says so, before the job can finish.
    const claimed = (l: Record<string, unknown>) => l.msg === 'job claimed' && l.job === analysisId;
    const first = await until('a claim', () => [a, b].find((r) => r.lines.some(claimed)), 60_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const other = first === a ? b : a;
    const [row] = await rows('SELECT state, attempts, lease_until FROM jobs');
    expect(row).toMatchObject({ state: 'running', attempts: 1 }); // killed mid-job, not after it
    expect(await rows('SELECT id FROM analyses')).toEqual([]);

    await until('the other replica to claim the job', () => other.lines.some(claimed), LEASE_MS + 30_000);
    // Not before the dead replica's lease ran out: the claim's own log time against the lease in the store (one
    // clock, this machine), not the test's polling, which a loaded machine delays.
    const leaseUntil = Number((row as { lease_until: unknown }).lease_until);
    expect(leaseUntil).toBeGreaterThan(Date.parse(String(first.lines.find(claimed)!.time)));
    const claimedAt = Date.parse(String(other.lines.find(claimed)!.time));
    expect(claimedAt).toBeGreaterThanOrEqual(leaseUntil - 50);
    await until('the job to finish', () => other.lines.some((l) => l.msg === 'job done' && l.job === analysisId), 240_000);
    expect(await rows(`SELECT state, attempts, analysis_id FROM jobs WHERE id = '${String(analysisId)}'`)).toEqual([{ state: 'done', attempts: 2, analysis_id: analysisId }]);
    expect(await rows('SELECT id FROM analyses')).toEqual([{ id: analysisId }]);

    const again = await callHook(other);
    expect(again.cards[0]?.summary).not.toMatch(/in progress/);
    expect(again.cards[0]?.extension?.[ANALYSIS_EXTENSION]).toBe(analysisId);
    // The draft written back in the background: one job, queued when the analysis job completed, done once.
    const draftDone = (l: Record<string, unknown>) => l.msg === 'background draft write-back' && l.analysis === analysisId;
    await until('the background draft', () => [a, b].some((r) => r.lines.some(draftDone)), 60_000);
    await until('the draft job to be done', async () => (await rows(`SELECT state FROM jobs WHERE job_key LIKE 'draft-writeback:%' AND state = 'done'`)).length === 1, 30_000);

    // Visible to operators: nothing dead, two done (the analysis and its draft).
    const listed = (await (await fetch(`${other.url}/admin/jobs?state=done`)).json()) as { jobs: { id: string; kind: string; attempts: number; analysisId: string }[] };
    expect(listed.jobs.map((j) => [j.kind, j.analysisId]).sort()).toEqual([['analysis', analysisId], ['draft-writeback', analysisId]]);
    expect(listed.jobs.find((j) => j.kind === 'analysis')).toMatchObject({ id: analysisId, attempts: 2 });
    expect(((await (await fetch(`${other.url}/admin/jobs?state=dead`)).json()) as { jobs: unknown[] }).jobs).toEqual([]);
    const metrics = await (await fetch(`${other.url}/metrics`)).text();
    expect(metrics).toMatch(/volmo_jobs\{state="done"\} 2/);
    expect(metrics).toMatch(/volmo_jobs_finished_total\{outcome="done",kind=""\} [12]/);

    // Restart the killed replica on the same port and store: the finished analysis at once, nothing queued again.
    const restarted = await spawnReplica(`${first.name}-restarted`, first.port);
    const t0 = performance.now();
    const after = await callHook(restarted);
    expect(performance.now() - t0).toBeLessThan(15_000);
    expect(after.cards[0]?.summary).toBe(again.cards[0]?.summary);
    expect(after.cards[0]?.extension?.[ANALYSIS_EXTENSION]).toBe(analysisId);
    expect(await rows('SELECT COUNT(*)::int AS n FROM jobs')).toEqual([{ n: 2 }]);
    expect(await rows('SELECT COUNT(*)::int AS n FROM analyses')).toEqual([{ n: 1 }]);

    // Both replicas (and the restarted one) saw the analysis finish: exactly one draft on the EHR, written by `system`.
    await new Promise((res) => setTimeout(res, 1000));
    const reports = await sb.fhir.repo.searchResources(parseSearchRequest(`DiagnosticReport?identifier=urn:volmo-cds:writeback|${String(analysisId)}/DiagnosticReport`));
    expect(reports.map((r) => (r as { status?: string }).status)).toEqual(['preliminary']);
    expect(await sb.fhir.repo.searchResources(parseSearchRequest(`Provenance?_tag=urn:volmo-cds:writeback|${String(analysisId)}/Provenance/draft`))).toHaveLength(1);
    expect(await rows(`SELECT action, state FROM writeback WHERE analysis_id = '${String(analysisId)}'`)).toEqual([{ action: 'draft', state: 'done' }]);
    expect(await rows(`SELECT actor, action, outcome FROM audit_log WHERE analysis_id = '${String(analysisId)}'`)).toEqual([{ actor: 'system', action: 'writeback.draft', outcome: 'written' }]);
  }, 420_000);
});
