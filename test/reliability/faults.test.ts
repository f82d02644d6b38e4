/**
 * Issue 14, "Keep it found": faults injected while hook traffic flows through the real service (sandbox
 * FHIR server, Orthanc when installed, the tiny TEST MODEL in a worker thread). Each fault asserts the
 * degraded answer (no 5xx, no crash, answered within the hook deadline) and then the recovery (the fault
 * removed, the next call succeeds). Bounded: a handful of calls per fault, every wait has a deadline.
 *
 * The hooks come from a second EHR, configured the production way (VOLMO_CDS_CLIENTS with its JWKS and
 * bound to one FHIR server), whose FHIR server is a fault proxy in front of the sandbox FHIR server.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker as NodeWorker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CdsCard } from '../../src/cds/types.js';
import type { SandboxedService } from '../../src/sandbox/service.js';
import { ehrToken, fixturePatientId, sandboxHookCall, type EhrToken } from '../../src/sandbox/ehr-access.js';
import { startEhrSimulator, type EhrSimulator, type HookCall } from '../../src/sandbox/ehr-simulator.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { READ_SCOPES } from '../../src/sandbox/sandbox-clients.js';
import { buildTiny } from '../model/model-harness.js';
import { startSandboxedService } from '../helpers/service.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

// Every inference worker the engine starts, and a hook to learn when one is handed an exam.
const tracked = vi.hoisted(() => ({ workers: [] as NodeWorker[], onRun: undefined as (() => void) | undefined }));
vi.mock('node:worker_threads', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:worker_threads')>();
  class TrackedWorker extends real.Worker {
    constructor(...args: ConstructorParameters<typeof real.Worker>) {
      super(...args);
      // The model's workers only (the image checks have a worker pool of their own).
      if (/model[\\/]runtime/.test(String(args[0]))) tracked.workers.push(this);
    }
    override postMessage(msg: unknown, transfer?: readonly import('node:worker_threads').TransferListItem[]): void {
      super.postMessage(msg, transfer);
      if ((msg as { type?: string }).type === 'run' && tracked.workers.includes(this)) tracked.onRun?.();
    }
  }
  return { ...real, Worker: TrackedWorker, default: { ...real, Worker: TrackedWorker } };
});

/** Generous for this shared 2-core machine: the normal path (FHIR + PACS + checks) must fit in it. */
const HOOK_DEADLINE_MS = 10_000;
const SKEW_S = 60;

let svc: SandboxedService;
let fhir: FaultProxy;
let ehr: EhrSimulator;
let token: EhrToken;
const ids = new Map<string, string>();
/** Statuses of the degraded calls, for the known-bug checks at the end. */
const degraded: Record<string, number> = {};
const degradedCards: Record<string, CdsCard[]> = {};

beforeAll(async () => {
  const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-faults-model-')) })).outDir;
  fhir = await startFaultProxy();
  ehr = await startEhrSimulator({ alg: 'ES384', iss: 'https://ehr-two.example.org' });
  const fhirBase = `${fhir.origin}/fhir/R4`;
  svc = await startSandboxedService({
    VOLMO_MODEL_DIR: modelDir,
    VOLMO_TASKS: 'screening',
    VOLMO_HOOK_TIMEOUT_MS: String(HOOK_DEADLINE_MS),
    // Long enough that the crash test's hook is still waiting when its analysis loses the worker.
    VOLMO_HOOK_WAIT_MS: '8000',
    VOLMO_JWT_CLOCK_SKEW_SECONDS: String(SKEW_S),
    VOLMO_FHIR_ALLOWLIST: fhirBase,
    VOLMO_CDS_CLIENTS: JSON.stringify([{ iss: ehr.iss, jku: [ehr.jku], jwks: ehr.publicJwks(), fhirServers: [fhirBase] }]),
  });
  const sb = svc.sandbox!;
  fhir.target = new URL(sb.fhirBaseUrl).origin;
  token = await ehrToken(sb.fhirBaseUrl, sb.ehr, READ_SCOPES.map((r) => `system/${r}.rs`));
  for (const p of listFixturePatients()) ids.set(p.key, await fixturePatientId(sb.fhirBaseUrl, token.access_token, p.mrn));
}, 180_000);
afterAll(async () => {
  await svc?.close();
  await ehr?.close();
  await fhir?.close();
});

async function hookCall(key: string, hook: HookCall['hook'] = 'patient-view'): Promise<HookCall> {
  return sandboxHookCall({ serviceBaseUrl: svc.url, fhirBaseUrl: `${fhir.origin}/fhir/R4`, token, patientId: ids.get(key)!, hook, prefetch: false, withToken: true });
}

/** One signed call from the second EHR: status, cards and how long it took. */
async function call(key: string, sign: Parameters<EhrSimulator['callHook']>[1] = {}) {
  const t0 = Date.now();
  const res = await ehr.callHook(await hookCall(key), sign);
  return { status: res.status, cards: ((res.body as { cards?: CdsCard[] } | null)?.cards ?? []) as CdsCard[], ms: Date.now() - t0 };
}

/** Calls until a card with findings (not "in progress") comes back, at most `max` times. */
async function untilFindings(key: string, max = 40): Promise<CdsCard> {
  for (let i = 0; i < max; i++) {
    const r = await call(key);
    expect(r.status).toBe(200);
    const card = r.cards[0];
    if (card && !/in progress|not available/.test(card.summary)) return card;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`no findings for ${key} after ${max} calls`);
}

describe('faults while hook traffic flows', () => {
  it('baseline: the second EHR gets findings from the TEST MODEL through the proxy', async () => {
    const card = await untilFindings('diabetic');
    expect(card.summary).toMatch(/TEST MODEL/);
    expect(fhir.seen.pass).toBeGreaterThan(0);
  }, 60_000);

  it.each([
    ['answers 500', '500'],
    ['is down (connections reset)', 'down'],
    ['is slower than the hook deadline', 'slow'],
  ] as const)('FHIR server %s: answered within the deadline, nothing invented; then recovers', async (_n, mode) => {
    fhir.mode = mode;
    fhir.delayMs = HOOK_DEADLINE_MS + 3_000;
    const bad = await call('amd');
    fhir.mode = 'pass';
    degraded[mode] = bad.status;
    degradedCards[mode] = bad.cards;
    expect(bad.ms).toBeLessThan(HOOK_DEADLINE_MS + 2_000);
    expect(JSON.stringify(bad.cards)).not.toMatch(/Right eye/); // no findings without evidence
    expect(fhir.seen[mode]).toBeGreaterThan(0);
    const card = await untilFindings('amd');
    expect(card.summary).toMatch(/TEST MODEL/);
  }, 60_000);

  it('FHIR server 500 or down: the hook answers without a 5xx (412: the FHIR data could not be read)', () => {
    expect(degraded['500']).toBe(412);
    expect(degraded.down).toBe(412);
  });

  // Listing the evidence past VOLMO_HOOK_TIMEOUT_MS: a 200 with an "AI review not available" info card, not a 504
  // (an EHR shows nothing for an error; the clinician should see why there is no review).
  it('FHIR server slower than the deadline: the hook answers 200 with an info card saying why', () => {
    expect(degraded.slow).toBe(200);
    expect(degradedCards.slow?.[0]?.summary).toMatch(/AI review not available: the patient's records could not be read in time$/);
  });

  it('model worker killed mid-exam: answered within the deadline, the worker is replaced and the next analysis succeeds', async () => {
    const before = tracked.workers.length;
    const running = new Promise<void>((r) => (tracked.onRun = r));
    const pending = call('glaucoma');
    await running;
    tracked.onRun = undefined;
    await tracked.workers.at(-1)!.terminate();
    const bad = await pending;
    degraded.crash = bad.status;
    degradedCards.crash = bad.cards;
    expect(bad.ms).toBeLessThan(HOOK_DEADLINE_MS + 2_000);
    const card = await untilFindings('glaucoma');
    expect(card.summary).toMatch(/TEST MODEL/);
    expect(tracked.workers.length).toBe(before + 1); // exactly one replacement
  }, 60_000);

  // An analysis whose worker died: a 200 with "the analysis could not be completed; it is retried", not a 503.
  it('model worker killed mid-exam: the hook answers 200 with an info card saying it is retried', () => {
    expect(degraded.crash).toBe(200);
    expect(degradedCards.crash?.[0]?.summary).toMatch(/AI review not available: the analysis failed; retried on the next chart action$/);
  });

  it.each([
    ['EHR clock 3 min ahead (iat in the future)', { iatOffsetSeconds: 180 }, 401],
    ['EHR clock 3 min behind (60 s token already expired)', { iatOffsetSeconds: -180, expiresInSeconds: 60 }, 401],
    ['EHR clock 30 s ahead (within the skew)', { iatOffsetSeconds: 30 }, 200],
    ['EHR clock 30 s behind, 60 s token (within the skew)', { iatOffsetSeconds: -30, expiresInSeconds: 60 }, 200],
  ] as const)('%s: %s', async (_n, sign, status) => {
    const r = await call('no-images', sign);
    expect(r.status).toBe(status);
    // And a call with a correct clock right after is accepted.
    expect((await call('no-images')).status).toBe(200);
  }, 30_000);
});
