/**
 * Where new eye images are noticed. Both name FHIR patients; the pipeline then lists the patient's evidence
 * from the FHIR server exactly as a hook without prefetch would, so a later hook finds the same analysis.
 *
 * - FHIR: ImagingStudy and Media with `_lastUpdated` after the mark (the EHR's imaging record).
 * - DICOMweb: QIDO-RS studies of modality OP or OPT from the mark's study date on (a lookback covers
 *   late-arriving studies; studies already seen are remembered for the mark's days), then the patient by
 *   the DICOM PatientID as an identifier on the FHIR server. QIDO-RS has no "stored since": a study whose
 *   StudyDate is older than the lookback is not noticed by this source (the FHIR source still sees its record).
 */
import type { FhirClient } from '../fhir/client.js';
import { jsonString, type DicomWebClient } from '../imaging/dicomweb-client.js';
import { selectImages } from '../imaging/select.js';
import type { WatchSource } from './image-watcher.js';

const PAGE = '100';

function patientOf(subject: unknown): string | undefined {
  const ref = (subject as { reference?: unknown } | undefined)?.reference;
  const m = typeof ref === 'string' ? /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(ref) : null;
  return m?.[1];
}

/** `_lastUpdated` polling of ImagingStudy and Media. The first poll starts from `startAt` (default: now): no backfill. */
export function fhirImagingSource(fhir: FhirClient, opts: { startAt?: () => string } = {}): WatchSource {
  return {
    name: `fhir-imaging ${fhir.baseUrl}`,
    async poll(mark, signal) {
      const since = mark ?? opts.startAt?.() ?? new Date().toISOString();
      const patients = new Set<string>();
      let newest = since;
      for (const type of ['ImagingStudy', 'Media']) {
        const found = await fhir.search(type, { _lastUpdated: `gt${since}`, _sort: '_lastUpdated', _count: PAGE }, { signal, maxPages: 10, maxResources: 1000 });
        for (const r of found.resources) {
          const updated = r.meta?.lastUpdated;
          if (typeof updated === 'string' && updated > newest) newest = updated;
          const patient = patientOf((r as { subject?: unknown }).subject);
          if (patient && selectImages([r]).length > 0) patients.add(patient);
        }
      }
      return { patients: [...patients], mark: newest };
    },
  };
}

interface QidoMark {
  /** YYYYMMDD: the earliest study date still searched. */
  from: string;
  /** Study UIDs already seen on or after `from`. */
  seen: string[];
}

const dicomDate = (d: Date) => d.toISOString().slice(0, 10).replaceAll('-', '');

/**
 * QIDO-RS polling of a PACS for OP/OPT studies; patients found on `fhir` by `Patient?identifier=[system|]PatientID`.
 * `lookbackDays` (default 2) keeps a late-arriving study of the last days in view.
 */
export function dicomWebSource(pacs: DicomWebClient, fhir: FhirClient, opts: { identifierSystem?: string; lookbackDays?: number; now?: () => Date } = {}): WatchSource {
  const now = opts.now ?? (() => new Date());
  return {
    name: `dicomweb ${pacs.baseUrl}`,
    async poll(raw, signal) {
      const lookback = dicomDate(new Date(now().getTime() - (opts.lookbackDays ?? 2) * 86_400_000));
      const mark: QidoMark = raw ? (JSON.parse(raw) as QidoMark) : { from: dicomDate(now()), seen: [] };
      const from = mark.from < lookback ? lookback : mark.from;
      const seen = new Set(mark.seen);
      const fresh = new Map<string, string>(); // study UID -> PatientID
      for (const modality of ['OP', 'OPT']) {
        for (const study of await pacs.searchStudies({ ModalitiesInStudy: modality, StudyDate: `${from}-`, includefield: '00100020', limit: '1000' })) {
          const uid = jsonString(study, '0020000D');
          const patientId = jsonString(study, '00100020');
          if (uid && patientId && !seen.has(uid)) fresh.set(uid, patientId);
        }
      }
      const patients = new Set<string>();
      for (const patientId of new Set(fresh.values())) {
        const identifier = opts.identifierSystem ? `${opts.identifierSystem}|${patientId}` : patientId;
        const found = await fhir.search('Patient', { identifier, _count: '2' }, { signal, maxPages: 1 });
        if (found.resources.length === 1 && found.resources[0]!.id) patients.add(found.resources[0]!.id);
      }
      const next: QidoMark = { from, seen: [...seen, ...fresh.keys()].slice(-5000) };
      return { patients: [...patients], mark: JSON.stringify(next) };
    },
  };
}
