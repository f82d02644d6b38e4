/**
 * The second stage (VOLMO's own assessment and plan) as a job on the durable queue: the service (tiny test
 * model, VOLMO_ASSESS_PLAN=always, SQLite) stores the first-stage analysis and queues the assess-plan job;
 * it is stopped at that moment, before the job can run. Started again on the same store, it claims the job
 * and finishes it: the stored analysis (same id) leaves `pending`, and the job is listed at /admin/jobs.
 * The sandbox (the EHR) is started apart and keeps running, as in restart-store.test.ts.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYSIS_EXTENSION } from '../../src/cds/cards.js';
import type { CdsCard } from '../../src/cds/types.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startService, type RunningService } from '../../src/main.js';
import type { EhrToken } from '../../src/sandbox/ehr-access.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { startEhrApart } from './ehr-apart.js';
import { open } from '../store/helpers.js';
import { until } from '../helpers/until.js';

let keyFile: string, databaseUrl: string, modelDir: string, port: number;
let sb: Sandbox;
let token: EhrToken;
let patientId: string;

beforeAll(async () => {
  ({ keyFile, databaseUrl, modelDir, port, sb, token, patientId } = await startEhrApart('volmo-ap-restart'));
}, 180_000);
afterAll(async () => sb?.stop());

/** The service; `onLine` sees each JSON log line as it is written. */
function start(onLine: (line: Record<string, unknown>) => void = () => undefined): Promise<RunningService> {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) onLine(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return startService(
    loadConfig({
      VOLMO_SANDBOX: 'false',
      VOLMO_PORT: String(port),
      VOLMO_MODEL_DIR: modelDir,
      VOLMO_FHIR_ALLOWLIST: sb.fhirBaseUrl,
      VOLMO_CDS_CLIENTS: JSON.stringify([{ iss: sb.ehr.iss, jku: [sb.ehr.jku], fhirServers: [sb.fhirBaseUrl] }]),
      VOLMO_DATABASE_URL: databaseUrl,
      VOLMO_DATA_KEY_FILE: keyFile,
      VOLMO_ASSESS_PLAN: 'always',
      VOLMO_HOOK_WAIT_MS: '0',
      VOLMO_JOB_POLL_MS: '100',
      VOLMO_JOB_LEASE_MS: '2000',
      VOLMO_SHUTDOWN_GRACE_MS: '5000',
    }),
    createLogger({ level: 'info', destination: sink }),
  );
}

async function callHook(svc: RunningService): Promise<CdsCard[]> {
  const res = await sb.ehr.callHook({
    serviceUrl: `${svc.url}/cds-services/volmo-eye-exam-order-sign`,
    hook: 'order-sign',
    context: { userId: 'Practitioner/sandbox-practitioner', patientId, draftOrders: draftOrders(eyeExamOrder(patientId)) },
    fhirServer: sb.fhirBaseUrl,
    fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
  });
  expect(res.status).toBe(200);
  return (res.body as { cards?: CdsCard[] }).cards ?? [];
}


async function readStore<T>(read: (store: Awaited<ReturnType<typeof open>>) => Promise<T>): Promise<T> {
  const store = await open(databaseUrl, keyFile);
  try {
    return await read(store);
  } finally {
    await store.close();
  }
}

describe('the assess-plan second stage as a durable job', () => {
  it('queued when the first stage is stored, not lost when the service stops before it runs: the restarted service finishes it', async () => {
    let closing: Promise<void> | undefined;
    let svc: RunningService | undefined;
    // Stop the service the moment it has queued the follow-up job (the log line is written synchronously, before the runner can claim it).
    svc = await start((line) => {
      if (line.msg === 'follow-up jobs queued' && !closing) closing = svc!.close();
    });
    const cards = await callHook(svc);
    const analysisId = cards[0]?.extension?.[ANALYSIS_EXTENSION] as string;
    expect(typeof analysisId).toBe('string');
    await until('the first stage stored and the service stopped', async () => closing !== undefined, 180_000);
    await closing;

    const before = await readStore(async (store) => ({
      job: await store.jobs.findByKey(`assess-plan:${analysisId}`),
      analysis: await store.analyses.findById(analysisId),
    }));
    expect(before.analysis?.result.assessPlanStage?.status).toBe('pending');
    expect(before.job).toMatchObject({ state: 'queued', attempts: 0 });

    const again = await start();
    try {
      const listed = await until(
        'the assess-plan job done',
        async () => {
          const { jobs } = (await (await fetch(`${again.url}/admin/jobs?state=done`)).json()) as { jobs: { id: string; kind: string; analysisId: string; attempts: number }[] };
          return jobs.find((j) => j.kind === 'assess-plan');
        },
        240_000,
      );
      expect(listed).toMatchObject({ id: before.job!.id, analysisId, attempts: 1 });
    } finally {
      await again.close();
    }
    const after = await readStore((store) => store.analyses.findById(analysisId));
    expect(after?.id).toBe(analysisId);
    expect(['done', 'failed']).toContain(after?.result.assessPlanStage?.status);
    expect(after?.result.timings.assessPlanMs).toBeGreaterThan(0);
  }, 480_000);
});
