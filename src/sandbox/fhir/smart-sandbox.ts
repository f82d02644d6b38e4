/**
 * Starts the sandbox FHIR server and its SMART authorization server together, each on its own loopback
 * port (ephemeral by default), and connects them: the FHIR server listens first so the authorization
 * server knows the FHIR base URL (its token audience); then the FHIR server learns the issuer and JWKS.
 */
import type { Logger } from '../../log.js';
import { startAuthServer, type AuthSandbox, type SandboxClient } from '../auth-server.js';
import { openFhirServer, type FhirSandbox } from '../fhir-server.js';

export interface SmartSandboxOptions {
  host?: string;
  fhirPort?: number;
  authPort?: number;
  clients: SandboxClient[];
  log: Logger;
  defaultPatient?: string;
  sandboxUser?: string;
  smartStyleUrl?: string;
}

export interface SmartSandbox {
  fhir: FhirSandbox;
  auth: AuthSandbox;
  close(): Promise<void>;
}

export async function startSmartSandbox(opts: SmartSandboxOptions): Promise<SmartSandbox> {
  const open = await openFhirServer({ host: opts.host, port: opts.fhirPort ?? 0, log: opts.log });
  let auth: AuthSandbox;
  try {
    auth = await startAuthServer({
      host: opts.host,
      port: opts.authPort ?? 0,
      fhirBaseUrl: open.sandbox.baseUrl,
      clients: opts.clients,
      log: opts.log,
      defaultPatient: opts.defaultPatient,
      sandboxUser: opts.sandboxUser,
      smartStyleUrl: opts.smartStyleUrl,
    });
  } catch (err) {
    await open.sandbox.close();
    throw err;
  }
  open.connectAuth({ authIssuer: auth.issuer, jwksUrl: auth.jwksUrl });
  return {
    fhir: open.sandbox,
    auth,
    close: async () => {
      await Promise.all([open.sandbox.close(), auth.close()]);
    },
  };
}
