/**
 * The real express app and hook handler in front of a loopback FHIR server the tests script, with a model
 * engine that must never be reached (for inputs that carry no decodable image: fuzzed and malformed records).
 */
import { AnalysisCache } from '../../src/analysis/analysis-cache.js';
import { createHookHandler } from '../../src/cds/hook-handler.js';
import { resolveFindingsConfig } from '../../src/findings/config.js';
import { silentLogger } from '../../src/log.js';
import type { VlmEngine } from '../../src/model/runtime/types.js';
import { createGuardedFetch } from '../../src/net/guarded-fetch.js';
import { startEhrSimulator, type EhrSimulator } from '../../src/sandbox/ehr-simulator.js';
import { startScriptedServer, type ScriptedServer } from '../net/helpers/scripted-server.js';
import { buildTestApp, PUBLIC_URL } from './build-app.js';

export const VIEW = 'volmo-eye-summary-patient-view';
export const VIEW_URL = `${PUBLIC_URL}/cds-services/${VIEW}`;

const engineNeverRun = { info: { name: 'stand-in', version: '0', random: true, manifestSha256: 'x', executionProvider: 'cpu', dtype: 'fp32' } } as unknown as VlmEngine;

export interface StandInHookApp {
  ehr: EhrSimulator;
  /** The FHIR server on loopback, base `${srv.origin}/fhir`, the only one the handler may call. */
  srv: ScriptedServer;
  app: ReturnType<typeof buildTestApp>['app'];
  close(): Promise<void>;
}

export async function startStandInHookApp(): Promise<StandInHookApp> {
  const ehr = await startEhrSimulator();
  const srv = await startScriptedServer();
  const gf = createGuardedFetch({ allow: [`${srv.origin}/fhir`], timeoutMs: 1000, retry: { maxRetries: 0 } });
  const handler = createHookHandler({
    publicUrl: PUBLIC_URL,
    log: silentLogger(),
    fetch: gf,
    isFhirServerAllowed: (url) => url === `${srv.origin}/fhir`,
    engine: () => engineNeverRun,
    findings: resolveFindingsConfig(),
    analyses: new AnalysisCache({ ttlMs: 1000, maxEntries: 10 }),
    waitMs: 0,
  });
  const { app } = buildTestApp(ehr, { handler });
  return {
    ehr, srv, app,
    async close() {
      gf.close();
      await srv.close();
      await ehr.close();
    },
  };
}
