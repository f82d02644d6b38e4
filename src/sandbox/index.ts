/**
 * The local EHR sandbox: real servers on loopback that stand in for an EHR during development, demos and
 * tests — FHIR R4 (bearer tokens, SMART scopes), a SMART authorization server, Orthanc (DICOMweb) when
 * installed, the fixture patients, and an EHR simulator that signs CDS Hooks calls. Never part of a
 * production deployment (the production profile refuses to start it).
 */
import { readFile } from 'node:fs/promises';
import type { JSONWebKeySet } from 'jose';
import type { TrustedCdsClient } from '../cds/jwt-verifier.js';
import { AppError } from '../errors.js';
import type { ReadinessCheck } from '../http/app.js';
import type { Logger } from '../log.js';
import { startAuthServer, type AuthSandbox } from './auth-server.js';
import { startEhrSimulator, type EhrSimulator } from './ehr-simulator.js';
import { createEhrPageHandler } from './ehr-page/server.js';
import { openFhirServer, type FhirSandbox } from './fhir-server.js';
import { FIXTURE_MRN_SYSTEM, listFixturePatients, loadFixtureBundles } from './fixtures.js';
import { findOrthanc, startOrthanc, type OrthancSandbox } from './orthanc.js';
import { sandboxClients } from './sandbox-clients.js';
import { authEndpoint } from './auth/smart-configuration.js';
import type { SandboxSettings } from './settings.js';

export interface Sandbox {
  fhirBaseUrl: string;
  /** The identifier system of the fixture patients' MRNs (the DICOM PatientID of their studies). */
  mrnSystem: string;
  authIssuer: string;
  /**
   * The exact URLs the service may call besides the FHIR base: the auth server's token and JWKS endpoints
   * (never the whole auth origin) and the DICOMweb base.
   */
  outboundAllowlist: string[];
  /** null when no PACS runs: fixture images are then FHIR attachments. */
  dicomWebUrl: string | null;
  /** The sandbox PACS (Orthanc), to store new studies as a modality would; null without one. */
  pacs: OrthancSandbox | null;
  fhir: FhirSandbox;
  auth: AuthSandbox;
  ehr: EhrSimulator;
  /** The sandbox EHR page (pick a patient, send hooks, see cards, launch the app): the EHR simulator's origin. */
  ehrPageUrl: string;
  trustedCdsClient: TrustedCdsClient;
  readiness: ReadinessCheck[];
  stop(): Promise<void>;
}

export interface SandboxOptions {
  settings: Pick<SandboxSettings, 'sandboxFhirPort' | 'sandboxAuthPort' | 'sandboxPacsPort' | 'sandboxEhrPort' | 'sandboxStateDir' | 'sandboxPacs'> & Partial<Pick<SandboxSettings, 'sandboxEhrProfile'>>;
  /** The service's public base URL (the SMART app's redirect URI is registered under it). */
  publicUrl: string;
  log: Logger;
  host?: string;
  /** Public keys of this service's Backend Services client (registered inline with the auth server). */
  backendJwks?: JSONWebKeySet;
  /** The SMART app's public keys when it authenticates with private_key_jwt (registered confidential-asymmetric); absent: a public client. */
  smartAppJwks?: JSONWebKeySet;
}

export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const { settings: config, log } = opts;
  const host = opts.host ?? '127.0.0.1';
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((e: unknown) => log.warn({ err: e }, 'sandbox component failed to stop'));
  };
  try {
    const pacs = await startPacs(opts);
    if (pacs) stops.push(() => pacs.stop());

    const ehr = await startEhrSimulator({ alg: 'ES384', host, port: config.sandboxEhrPort, keyFile: ehrKeyFile(config.sandboxStateDir) });
    stops.push(() => ehr.close());

    const fhirOpen = await openFhirServer({ host, port: config.sandboxFhirPort, log: log.child({ server: 'fhir' }), ehrProfile: config.sandboxEhrProfile ?? 'standard' });
    const fhir = fhirOpen.sandbox;
    stops.push(() => fhir.close());

    const auth = await startAuthServer({
      host,
      port: config.sandboxAuthPort,
      fhirBaseUrl: fhir.baseUrl,
      clients: sandboxClients({ publicUrl: opts.publicUrl, ehrJwks: ehr.publicJwks(), backendJwks: opts.backendJwks, smartAppJwks: opts.smartAppJwks }),
      log: log.child({ server: 'auth' }),
    });
    stops.push(() => auth.close());
    fhirOpen.connectAuth({ authIssuer: auth.issuer, jwksUrl: auth.jwksUrl });

    const bundles = loadFixtureBundles({ dicomWebBaseUrl: pacs?.dicomWebUrl });
    for (const b of bundles) await fhir.loadBundle(b);
    ehr.setPageHandler(
      createEhrPageHandler({ serviceUrl: opts.publicUrl, fhirBaseUrl: fhir.baseUrl, authIssuer: auth.issuer, ehr, createLaunch: (ctx) => auth.createLaunch(ctx), log: log.child({ server: 'ehr-page' }) }),
    );
    const ehrPageUrl = `${ehr.origin}/`;
    log.info(
      { fhir: fhir.baseUrl, auth: auth.issuer, dicomWeb: pacs?.dicomWebUrl ?? null, patients: listFixturePatients().length, ehrIss: ehr.iss, ehrPage: ehrPageUrl },
      pacs ? 'local EHR sandbox ready' : 'local EHR sandbox ready WITHOUT a PACS: fixture images are served as FHIR attachments',
    );

    const readiness: ReadinessCheck[] = [
      { name: 'sandbox-fhir', check: () => probe(`${fhir.baseUrl}/metadata`) },
      { name: 'sandbox-auth', check: () => probe(`${auth.issuer}/.well-known/smart-configuration`) },
    ];
    if (pacs) readiness.push({ name: 'sandbox-pacs', check: () => probe(`${pacs.restUrl}/system`) });

    return {
      fhirBaseUrl: fhir.baseUrl,
      mrnSystem: FIXTURE_MRN_SYSTEM,
      authIssuer: auth.issuer,
      outboundAllowlist: [authEndpoint(auth.issuer, 'token'), auth.jwksUrl, ...(pacs ? [pacs.dicomWebUrl] : [])],
      dicomWebUrl: pacs?.dicomWebUrl ?? null,
      pacs,
      fhir,
      auth,
      ehr,
      ehrPageUrl,
      trustedCdsClient: { iss: ehr.iss, jku: [ehr.jku], fhirServers: [fhir.baseUrl] },
      readiness,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function startPacs({ settings: config, log }: SandboxOptions): Promise<OrthancSandbox | null> {
  if (config.sandboxPacs === 'none') return null;
  if (!findOrthanc()) {
    if (config.sandboxPacs === 'orthanc') throw new AppError('config_invalid', 'VOLMO_SANDBOX_PACS=orthanc but Orthanc with the DICOMweb plugin is not installed (apt-get install -y orthanc orthanc-dicomweb)');
    log.warn('Orthanc is not installed: the sandbox starts without a PACS and serves fixture images as FHIR attachments (apt-get install -y orthanc orthanc-dicomweb)');
    return null;
  }
  const pacs = await startOrthanc({ port: config.sandboxPacsPort || undefined, log: log.child({ server: 'pacs' }) });
  try {
    for (const p of listFixturePatients()) for (const file of p.dicomFiles) await pacs.uploadDicom(new Uint8Array(await readFile(file)));
  } catch (e) {
    await pacs.stop();
    throw e;
  }
  return pacs;
}

async function probe(url: string): Promise<{ ok: boolean; detail?: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.status < 500 ? { ok: true } : { ok: false, detail: `HTTP ${res.status}` };
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
}

/** The EHR simulator's signing key, shared by `npm start` and `npm run demo` so the demo signs as the same EHR. */
export function ehrKeyFile(stateDir: string): string {
  return `${stateDir}/ehr-simulator-es384.jwk.json`;
}

