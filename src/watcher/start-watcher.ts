/**
 * Wiring of the image watcher: a FHIR client with this service's own SMART Backend Services token, the
 * sources configured, and "analyse this patient" through the same pipeline as the hooks.
 */
import { analysisSubject } from '../analysis/analysis-cache.js';
import { listEvidence } from '../analysis/gather-evidence.js';
import { NoUsableImages } from '../analysis/no-usable-images.js';
import { analysisFor, type PipelineDeps } from '../analysis/pipeline.js';
import { BackendServicesTokenSource } from '../fhir/backend-services.js';
import { HttpFhirClient } from '../fhir/http-client.js';
import type { ServiceKey } from '../fhir/service-keys.js';
import { DicomWebClient } from '../imaging/dicomweb-client.js';
import type { Logger } from '../log.js';
import type { GuardedFetch } from '../net/guarded-fetch.js';
import { ImageWatcher, type MarkStore, type PatientOutcome, type WatcherCounters, type WatchSource } from './image-watcher.js';
import { FileMarkStore } from './mark-file.js';
import { dicomWebSource, fhirImagingSource } from './sources.js';

/** What the watcher reads with its Backend Services token (read-only system scopes). */
export const WATCHER_SCOPES = ['Patient', 'Encounter', 'Observation', 'Condition', 'ImagingStudy', 'Media', 'DocumentReference', 'MedicationRequest', 'MedicationStatement', 'Endpoint', 'Binary']
  .map((t) => `system/${t}.rs`)
  .join(' ');

export interface WatcherSettings {
  fhirBaseUrl: string;
  /** Poll the PACS (QIDO-RS) too, besides the FHIR record. */
  pacs?: { client: DicomWebClient; identifierSystem?: string };
  backendClientId: string;
  serviceKey: ServiceKey;
  stateFile: string;
  /** Where the high-water marks are kept (the service's store); default: `stateFile`. */
  marks?: MarkStore;
  intervalMs: number;
}

/** A FHIR client for `fhirBaseUrl` with this service's own Backend Services token (the watcher's, and its jobs'). */
export function backendFhirClient(s: Pick<WatcherSettings, 'fhirBaseUrl' | 'backendClientId' | 'serviceKey'>, deps: { fetch: GuardedFetch; log: Logger }): HttpFhirClient {
  const tokens = new BackendServicesTokenSource({ fetch: deps.fetch, fhirBaseUrl: s.fhirBaseUrl, clientId: s.backendClientId, scope: WATCHER_SCOPES, key: s.serviceKey, logger: deps.log });
  return new HttpFhirClient({ baseUrl: s.fhirBaseUrl, fetch: deps.fetch, tokens, logger: deps.log });
}

export function startWatcher(s: WatcherSettings, deps: { fetch: GuardedFetch; log: Logger; counters?: WatcherCounters; pipeline: PipelineDeps }): ImageWatcher {
  const fhir = backendFhirClient(s, deps);
  const sources: WatchSource[] = [fhirImagingSource(fhir)];
  if (s.pacs) sources.push(dicomWebSource(s.pacs.client, fhir, { identifierSystem: s.pacs.identifierSystem }));
  const watcher = new ImageWatcher({
    sources,
    marks: s.marks ?? new FileMarkStore(s.stateFile),
    log: deps.log,
    counters: deps.counters,
    intervalMs: s.intervalMs,
    analysePatient: async (patientId, signal): Promise<PatientOutcome> => {
      const listed = await listEvidence({ patientId, fhir, signal }, { pacsConfigured: deps.pipeline.images.pacs !== undefined });
      if (listed.refs.length === 0) return 'no-images';
      const entry = await analysisFor(deps.pipeline, { subject: analysisSubject(s.fhirBaseUrl, patientId), patientId, listed, fhir, access: { kind: 'backend', fhirServer: s.fhirBaseUrl } });
      if (entry.result || entry.failure) return 'known';
      await entry.promise.catch((e: unknown) => {
        if (!(e instanceof NoUsableImages)) throw e;
      });
      return 'analysed';
    },
  });
  watcher.start();
  return watcher;
}
