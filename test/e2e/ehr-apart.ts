/**
 * For restart tests: the sandbox EHR started apart from the service (so its patient ids stay while the
 * service stops and starts), the tiny model, a SQLite store with its data key, the port the service will use,
 * and the diabetic fixture patient with an EHR token.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log.js';
import { ehrToken, fixturePatientId, type EhrToken } from '../../src/sandbox/ehr-access.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { loadSandboxSettings } from '../../src/sandbox/settings.js';
import { freePort } from '../helpers/free-port.js';
import { buildTiny } from '../model/model-harness.js';
import { writeKeyFile } from '../store/helpers.js';

export interface EhrApart {
  dir: string;
  keyFile: string;
  databaseUrl: string;
  modelDir: string;
  port: number;
  sb: Sandbox;
  token: EhrToken;
  patientId: string;
}

export async function startEhrApart(prefix: string): Promise<EhrApart> {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const keyFile = writeKeyFile(dir);
  const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), `${prefix}-model-`)) })).outDir;
  const port = await freePort();
  const settings = loadSandboxSettings({ VOLMO_SANDBOX_FHIR_PORT: '0', VOLMO_SANDBOX_AUTH_PORT: '0', VOLMO_SANDBOX_EHR_PORT: '0', VOLMO_SANDBOX_PACS: 'none', VOLMO_SANDBOX_STATE_DIR: join(dir, 'sandbox') });
  const sb = await startSandbox({ settings, publicUrl: `http://127.0.0.1:${port}`, log: silentLogger() });
  const token = await ehrToken(sb.fhirBaseUrl, sb.ehr);
  const patientId = await fixturePatientId(sb.fhirBaseUrl, token.access_token, listFixturePatients().find((p) => p.key === 'diabetic')!.mrn);
  return { dir, keyFile, databaseUrl: `sqlite:${join(dir, 'volmo.db')}`, modelDir, port, sb, token, patientId };
}
