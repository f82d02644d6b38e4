/** Starts the whole service with its sandbox on ephemeral loopback ports (the `npm start` path, isolated). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { startServiceWithSandbox, type SandboxedService } from '../../src/sandbox/service.js';
import { loadSandboxSettings } from '../../src/sandbox/settings.js';

export async function startSandboxedService(env: Record<string, string> = {}, log: Logger = silentLogger()): Promise<SandboxedService> {
  const all = {
    VOLMO_PORT: '0',
    VOLMO_SANDBOX_FHIR_PORT: '0',
    VOLMO_SANDBOX_AUTH_PORT: '0',
    VOLMO_SANDBOX_EHR_PORT: '0',
    VOLMO_SANDBOX_PACS_PORT: '0',
    VOLMO_SANDBOX_STATE_DIR: mkdtempSync(join(tmpdir(), 'volmo-state-')),
    VOLMO_SANDBOX_PACS: process.env.VOLMO_NO_PACS === '1' ? 'none' : 'orthanc',
    ...env,
  };
  return startServiceWithSandbox(loadConfig(all), loadSandboxSettings(all), log);
}
