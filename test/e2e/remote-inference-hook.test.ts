/**
 * Issue 11: the service with its inference on a `volmo worker` process (VOLMO_INFERENCE) answers the same signed
 * order-sign hook as the service with the in-process runtime — the same card, and the same stored findings with the
 * same probabilities (to 1e-6) — both on the tiny random-weight model, each with its own sandbox EHR.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYSIS_EXTENSION } from '../../src/cds/cards.js';
import type { CdsCard } from '../../src/cds/types.js';
import type { ExamFindings } from '../../src/findings/findings-types.js';
import { silentLogger } from '../../src/log.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { READ_SCOPES, SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import type { SandboxedService } from '../../src/sandbox/service.js';
import { openStore } from '../../src/store/open-store.js';
import { startSandboxedService } from '../helpers/service.js';
import { ehrBackendToken, fixturePatientId } from '../launch/smart-launch-flow.js';
import { buildTiny } from '../model/model-harness.js';
import { startWorkerProcess } from '../worker/worker-process.js';

const TOKEN = 'e2e-worker-token-0123456789abcdef';
const diabetic = listFixturePatients().find((p) => p.key === 'diabetic')!;
let worker: ChildProcess | undefined;
const services: { svc: SandboxedService; stateDir: string }[] = [];

async function start(env: Record<string, string>) {
  const stateDir = mkdtempSync(join(tmpdir(), 'volmo-remote-e2e-'));
  const svc = await startSandboxedService({ VOLMO_SANDBOX_STATE_DIR: stateDir, VOLMO_SANDBOX_PACS: 'none', VOLMO_WATCH: 'false', VOLMO_HOOK_WAIT_MS: '120000', ...env });
  services.push({ svc, stateDir });
  return { svc, stateDir };
}

async function orderSign(svc: SandboxedService): Promise<CdsCard> {
  const token = await ehrBackendToken(svc, READ_SCOPES.map((r) => `system/${r}.rs`).join(' '));
  const patientId = await fixturePatientId(svc, diabetic.mrn);
  const res = await svc.sandbox.ehr.callHook({
    serviceUrl: `${svc.url}/cds-services/volmo-eye-exam-order-sign`,
    hook: 'order-sign',
    context: { userId: 'Practitioner/sandbox-practitioner', patientId, draftOrders: draftOrders(eyeExamOrder(patientId)) },
    fhirServer: svc.sandbox.fhirBaseUrl,
    fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
  });
  expect(res.status).toBe(200);
  const cards = (res.body as { cards: CdsCard[] }).cards;
  expect(cards).toHaveLength(1);
  return cards[0]!;
}

/** The stored findings of the card's analysis, read from the service's own SQLite store with its data key. */
async function storedFindings(stateDir: string, card: CdsCard): Promise<ExamFindings> {
  const id = (card.extension as Record<string, string>)[ANALYSIS_EXTENSION]!;
  const store = await openStore({ databaseUrl: `sqlite:${join(stateDir, 'volmo.db')}`, dataKeyFile: join(stateDir, 'data.key'), analysisRetentionDays: 30, profile: 'sandbox' }, silentLogger(), { sweepIntervalMs: 0 });
  try {
    const stored = await store.analyses.findById(id);
    expect(stored, `analysis ${id} in ${stateDir}`).toBeDefined();
    return stored!.result.findings;
  } finally {
    await store.close();
  }
}

/** Probabilities by what they are about (image ids differ between the two sandboxes). */
function probabilities(f: ExamFindings): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of f.screeningResults) if (r.pTrue !== undefined) out.set(`${r.eye} ${r.condition} ${r.answer.kind}`, r.pTrue);
  for (const r of f.stageResults) for (const [k, p] of Object.entries(r.distribution ?? {})) out.set(`${r.eye} stage ${k}`, p);
  return out;
}

beforeAll(async () => {
  const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-remote-e2e-model-')) })).outDir;
  const w = await startWorkerProcess(modelDir, { VOLMO_WORKER_TOKEN: TOKEN });
  worker = w.child;
  await start({ VOLMO_MODEL_DIR: modelDir });
  await start({ VOLMO_INFERENCE: w.url, VOLMO_WORKER_TOKEN: TOKEN });
}, 240_000);

afterAll(async () => {
  for (const { svc } of services) await svc.close();
  worker?.kill('SIGTERM');
});

describe('inference on a volmo worker process, end to end through a hook', () => {
  it('gives the same card and the same stored findings as the in-process runtime', async () => {
    const [local, remote] = services;
    const ready = (await (await fetch(`${remote!.svc.url}/readyz`)).json()) as { checks: { name: string; detail?: string }[] };
    expect(ready.checks.find((c) => c.name === 'model')?.detail).toMatch(/on 1 remote worker/);
    const [localCard, remoteCard] = [await orderSign(local!.svc), await orderSign(remote!.svc)];
    expect(remoteCard.summary).not.toMatch(/in progress/);
    expect(remoteCard.summary).toBe(localCard.summary);
    expect(remoteCard.detail).toBe(localCard.detail);
    expect(remoteCard.detail).toMatch(/TEST MODEL WITH RANDOM WEIGHTS/); // the worker's random flag reached the card

    const [pl, pr] = [probabilities(await storedFindings(local!.stateDir, localCard)), probabilities(await storedFindings(remote!.stateDir, remoteCard))];
    expect(pl.size).toBeGreaterThan(20); // 12 conditions + 5 stage grades, per eye
    expect([...pr.keys()].sort()).toEqual([...pl.keys()].sort());
    for (const [k, p] of pl) expect(Math.abs(pr.get(k)! - p), k).toBeLessThan(1e-6);
  }, 300_000);
});
