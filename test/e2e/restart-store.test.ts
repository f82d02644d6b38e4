/**
 * Restart on a durable store: the service (tiny test model, SQLite store, data key) finishes an analysis,
 * receives feedback, is stopped and started again on the same store and port while the EHR (the sandbox,
 * started apart so its patient ids stay) keeps running: the same hook answers with the finished findings
 * at once (hook wait 0: a new run would answer "in progress"), a JWT used before the restart is refused,
 * the feedback is still listed. Then: a wrong data key and an unreachable database stop the start
 * (the CLI exits 78), and the same restart on `memory:` does forget (the test can tell the difference).
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANALYSIS_EXTENSION } from '../../src/cds/cards.js';
import type { CdsCard } from '../../src/cds/types.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startService, type RunningService } from '../../src/main.js';
import type { EhrToken } from '../../src/sandbox/ehr-access.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { startEhrApart } from './ehr-apart.js';
import { writeKeyFile } from '../store/helpers.js';
import { freePort } from '../helpers/free-port.js';

const SERVICE = 'volmo-eye-exam-order-sign';

let dir: string, keyFile: string, databaseUrl: string, modelDir: string, port: number;
let sb: Sandbox;
let token: EhrToken;
let patientId: string;

beforeAll(async () => {
  ({ dir, keyFile, databaseUrl, modelDir, port, sb, token, patientId } = await startEhrApart('volmo-restart'));
}, 180_000);
afterAll(async () => sb?.stop());

function start(env: Record<string, string>): Promise<RunningService> {
  return startService(
    loadConfig({
      VOLMO_SANDBOX: 'false',
      VOLMO_PORT: String(port),
      VOLMO_MODEL_DIR: modelDir,
      VOLMO_FHIR_ALLOWLIST: sb.fhirBaseUrl,
      VOLMO_CDS_CLIENTS: JSON.stringify([{ iss: sb.ehr.iss, jku: [sb.ehr.jku], fhirServers: [sb.fhirBaseUrl] }]),
      VOLMO_DATABASE_URL: databaseUrl,
      VOLMO_DATA_KEY_FILE: keyFile,
      ...env,
    }),
    silentLogger(),
  );
}

async function callHook(svc: RunningService, jti?: string): Promise<{ status: number; cards: CdsCard[] }> {
  const res = await sb.ehr.callHook(
    {
      serviceUrl: `${svc.url}/cds-services/${SERVICE}`,
      hook: 'order-sign',
      context: { userId: 'Practitioner/sandbox-practitioner', patientId, draftOrders: draftOrders(eyeExamOrder(patientId)) },
      fhirServer: sb.fhirBaseUrl,
      fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
    },
    jti ? { jti } : {},
  );
  return { status: res.status, cards: (res.body as { cards?: CdsCard[] } | null)?.cards ?? [] };
}

describe('restart on the same store', () => {
  let before: CdsCard;

  it('first run: the analysis finishes (the hook waits for it) and card feedback is recorded', async () => {
    const svc = await start({ VOLMO_HOOK_WAIT_MS: '120000' });
    try {
      const first = await callHook(svc, 'jti-used-before-restart');
      expect(first.status).toBe(200);
      expect(first.cards).toHaveLength(1);
      before = first.cards[0]!;
      expect(before.summary).not.toMatch(/in progress/);
      expect(before.detail).toMatch(/Right eye/);
      const fb = await fetch(`${svc.url}/cds-services/${SERVICE}/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await sb.ehr.signJwt(`${svc.url}/cds-services/${SERVICE}/feedback`)}` },
        body: JSON.stringify({ feedback: [{ card: before.uuid, outcome: 'accepted', outcomeTimestamp: new Date().toISOString() }] }),
      });
      expect(fb.status).toBe(200);
    } finally {
      await svc.close();
    }
  }, 300_000);

  it('after the restart: the finished findings at once, the old JWT refused, the feedback still there', async () => {
    expect(before).toBeDefined();
    const svc = await start({ VOLMO_HOOK_WAIT_MS: '0' });
    try {
      const t0 = performance.now();
      const again = await callHook(svc);
      const ms = performance.now() - t0;
      expect(again.status).toBe(200);
      expect(again.cards).toHaveLength(1);
      const card = again.cards[0]!;
      expect(card.summary).toBe(before.summary);
      expect(card.detail).toBe(before.detail);
      expect(card.extension?.[ANALYSIS_EXTENSION]).toBe(before.extension?.[ANALYSIS_EXTENSION]);
      expect(ms).toBeLessThan(15_000); // the hook deadline; no exam ran (with wait 0 a new run answers "in progress")

      const replayed = await callHook(svc, 'jti-used-before-restart');
      expect(replayed.status).toBe(401);

      const listed = (await (await fetch(`${svc.url}/admin/feedback`)).json()) as { feedback: { card: string; outcome: string }[] };
      expect(listed.feedback).toContainEqual(expect.objectContaining({ card: before.uuid, outcome: 'accepted' }));
    } finally {
      await svc.close();
    }
  }, 120_000);

  it('a wrong data key stops the start with a clear message', async () => {
    const wrong = writeKeyFile(dir, 'wrong.key');
    await expect(start({ VOLMO_DATA_KEY_FILE: wrong })).rejects.toThrow(/VOLMO_DATA_KEY_FILE: the data key \(fingerprint [0-9a-f]{8}\) is not the key the data in sqlite:.*volmo\.db was written with/);
  }, 60_000);

  it('control: on memory: the restart forgets (the same hook starts a new analysis)', async () => {
    const svc = await start({ VOLMO_DATABASE_URL: 'memory:', VOLMO_HOOK_WAIT_MS: '0' });
    try {
      const { cards } = await callHook(svc);
      expect(cards[0]?.summary).toMatch(/in progress/);
    } finally {
      await svc.close();
    }
  }, 120_000);
});

describe('start-up with an unreachable database', () => {
  it('`volmo serve` exits 78 with a message naming VOLMO_DATABASE_URL (no credentials)', async () => {
    const closed = await freePort();
    const r = spawnSync(process.execPath, ['bin/volmo.js', 'serve'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, VOLMO_SANDBOX: 'false', VOLMO_PORT: '0', VOLMO_LOG_LEVEL: 'silent', VOLMO_DATABASE_URL: `postgres://volmo:hunter2@127.0.0.1:${closed}/volmo`, VOLMO_DATA_KEY_FILE: keyFile },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(new RegExp(`VOLMO_DATABASE_URL: cannot use the database at postgres://127\\.0\\.0\\.1:${closed}/volmo: ECONNREFUSED`));
    expect(`${r.stdout}${r.stderr}`).not.toContain('hunter2');
  }, 90_000);
});
