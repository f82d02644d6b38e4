/**
 * The sandbox's composition root (`npm start`, `volmo demo`, the tests): starts the local EHR sandbox's real
 * servers, then the service with what an operator's configuration would give it for that EHR — the EHR
 * simulator as a trusted CDS client bound to the sandbox FHIR server, that server and the authorization
 * server's endpoints on the allowlists, Orthanc as the PACS, the image watcher polling the sandbox, and the
 * tiny test model when no model directory is set. The service (src/main.ts) never imports this folder.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { openService, type RunningService } from '../main.js';
import { startSandbox, type Sandbox } from './index.js';
import type { SandboxSettings } from './settings.js';
import { ensureTinyModel } from './tiny-model.js';

export interface SandboxedService extends RunningService {
  sandbox: Sandbox;
}

export async function startServiceWithSandbox(config: Config, settings: SandboxSettings, log: Logger): Promise<SandboxedService> {
  const open = await openService(config, log);
  let sandbox: Sandbox | undefined;
  try {
    sandbox = await startSandbox({ settings, publicUrl: open.publicUrl, log: log.child({ component: 'sandbox' }), backendJwks: open.serviceJwks, ...(open.smartClientJwks ? { smartAppJwks: open.smartClientJwks } : {}) });
    const modelDir = config.modelDir ?? (settings.sandboxModel === 'tiny' ? await ensureTinyModel(settings.sandboxStateDir, log) : undefined);
    const svc = await open.start(sandboxConfig(config, settings, sandbox, modelDir), { readiness: sandbox.readiness });
    const started = sandbox;
    log.info({ ehrPage: started.ehrPageUrl }, `sandbox EHR page: open ${started.ehrPageUrl} in a browser to pick a patient, sign an eye-exam order and launch VOLMO`);
    return {
      url: svc.url,
      sandbox: started,
      close: async () => {
        await svc.close();
        await started.stop();
      },
    };
  } catch (e) {
    await open.close();
    await sandbox?.stop();
    throw e;
  }
}

const SANDBOX_WRITEBACK = { standard: 'fhir-standard', epic: 'epic', oracle: 'oracle' } as const;

/** The operator's configuration for the sandbox EHR, on top of whatever the environment already says. */
export function sandboxConfig(config: Config, settings: SandboxSettings, sandbox: Sandbox, modelDir: string | undefined): Config {
  const { dicomWebUrl } = sandbox;
  const authEndpoints = sandbox.outboundAllowlist.filter((u) => u !== dicomWebUrl);
  // The sandbox PACS is the default PACS unless the operator named one (whose credentials never go to Orthanc).
  const pacs = !dicomWebUrl ? {} : config.pacsUrl ? { pacsAllowlist: [...config.pacsAllowlist, dicomWebUrl] } : { pacsUrl: dicomWebUrl, pacsAuth: undefined };
  return Object.freeze({
    ...config,
    cdsClients: [...config.cdsClients, sandbox.trustedCdsClient],
    // The sandbox EHR page shows the app in a side panel (an iframe): its origin may frame the app.
    appFrameAncestors: [...new Set([...config.appFrameAncestors, new URL(sandbox.ehrPageUrl).origin])],
    fhirAllowlist: [...config.fhirAllowlist, sandbox.fhirBaseUrl],
    smartAuthAllowlist: [...config.smartAuthAllowlist, ...authEndpoints],
    ...pacs,
    modelDir,
    watch: config.watch ?? true,
    watchFhirBase: config.watchFhirBase ?? sandbox.fhirBaseUrl,
    watchPatientIdentifierSystem: config.watchPatientIdentifierSystem ?? sandbox.mrnSystem,
    watchStateFile: config.watchStateFile ?? `${settings.sandboxStateDir}/watcher-marks.json`,
    databaseUrl: config.databaseUrl ?? `sqlite:${settings.sandboxStateDir}/volmo.db`,
    // The sandbox EHR's write-back profile follows the EHR it imitates, unless the operator named one for it.
    writebackProfiles: { [sandbox.fhirBaseUrl]: SANDBOX_WRITEBACK[settings.sandboxEhrProfile], ...config.writebackProfiles },
    // The AI draft is written to the sandbox EHR in the background (Backend Services) when an analysis finishes, unless the operator said otherwise.
    writebackBackground: config.writebackBackground ?? [sandbox.fhirBaseUrl],
  });
}
