/**
 * The sandbox's fixture patients (fixtures/index.json, written by scripts/generate-fixtures.ts) and their
 * FHIR R4 transaction bundles, ready to load into the sandbox FHIR server.
 *
 * With a PACS, the ImagingStudy Endpoint's placeholder address becomes the DICOMweb base URL. Without
 * one, the Endpoint is dropped and every DICOM instance is ALSO exposed as a FHIR Media resource with an
 * inline attachment (the JPEG frame for single-frame images, the whole Part 10 file for multi-frame
 * volumes), linked to its ImagingStudy by Media.partOf and to its DICOM instance by identifier.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bundle, BundleEntry, Endpoint, ImagingStudy, Media, Reference, Resource } from '@medplum/fhirtypes';
import dicomParser from 'dicom-parser';
import { z } from 'zod';
import { AppError } from '../errors.js';

export const DICOMWEB_PLACEHOLDER = 'urn:volmo:sandbox:dicomweb';
export const FIXTURE_MRN_SYSTEM = 'urn:volmo:sandbox:mrn';

const eye = z.enum(['R', 'L']);
const kind = z.enum(['fundus', 'oct-volume', 'oct-bscan']);
const expect = z.enum(['gradable', 'ungradable', 'corrupt']);
const dicomEntry = z.object({
  file: z.string(), eye, kind, expect, modality: z.enum(['OP', 'OPT']), sopClassUid: z.string(),
  studyUid: z.string(), seriesUid: z.string(), sopUid: z.string(),
  frames: z.number().int().positive(), rows: z.number().int().positive(), columns: z.number().int().positive(),
  licence: z.string().optional(), attribution: z.string().optional(),
});
const imageEntry = z.object({ file: z.string(), eye, kind, expect, note: z.string().optional() });
const indexSchema = z.object({
  patients: z.array(z.object({
    key: z.string(), mrn: z.string(), name: z.string(), gender: z.enum(['male', 'female']), birthDate: z.string(),
    description: z.string(), exercises: z.array(z.string()), bundle: z.string(),
    dicom: z.array(dicomEntry), images: z.array(imageEntry),
  })),
});

export type FixtureDicom = Omit<z.infer<typeof dicomEntry>, 'file'> & { path: string };
export type FixtureImage = Omit<z.infer<typeof imageEntry>, 'file'> & { path: string };

export interface FixturePatient {
  /** Short stable name: diabetic, amd, glaucoma, no-images, ungradable, corrupt, idrid. */
  key: string;
  /** Patient.identifier value (system FIXTURE_MRN_SYSTEM), also the DICOM PatientID. */
  mrn: string;
  name: string;
  gender: 'male' | 'female';
  birthDate: string;
  description: string;
  exercises: string[];
  bundlePath: string;
  dicom: FixtureDicom[];
  /** Absolute paths of the DICOM Part 10 files (what the PACS is loaded with). */
  dicomFiles: string[];
  /** Plain JPEG copies of the generated images (absent for the public IDRiD photograph, DICOM only). */
  images: FixtureImage[];
  imageFiles: string[];
}

/** fixtures/ at the repository root (this file lives in src/sandbox/). */
export function fixturesDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');
}

function readJsonFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new AppError('config_invalid', `cannot read fixture file ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export function listFixturePatients(dir: string = fixturesDir()): FixturePatient[] {
  const parsed = indexSchema.safeParse(readJsonFile(join(dir, 'index.json')));
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new AppError('config_invalid', `fixtures/index.json is invalid at ${first.path.join('.')}: ${first.message} (regenerate with node --import tsx scripts/generate-fixtures.ts)`);
  }
  return parsed.data.patients.map(({ bundle, dicom, images, ...rest }) => {
    const d = dicom.map(({ file, ...x }) => ({ ...x, path: join(dir, file) }));
    const i = images.map(({ file, ...x }) => ({ ...x, path: join(dir, file) }));
    return { ...rest, bundlePath: join(dir, bundle), dicom: d, dicomFiles: d.map((x) => x.path), images: i, imageFiles: i.map((x) => x.path) };
  });
}

export interface LoadFixtureOptions {
  /** DICOMweb base URL of the running PACS (e.g. http://127.0.0.1:8042/dicom-web). Absent: no PACS. */
  dicomWebBaseUrl?: string;
  /** Add Media attachments for every image. Default: only when there is no PACS. */
  attachments?: boolean;
  dir?: string;
}

/** The fixture bundles, deep copies, ready for a FHIR transaction. */
export function loadFixtureBundles(opts: LoadFixtureOptions = {}): Bundle[] {
  if (opts.dicomWebBaseUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(opts.dicomWebBaseUrl)) {
    throw new AppError('config_invalid', 'dicomWebBaseUrl must be an http(s) URL');
  }
  const base = opts.dicomWebBaseUrl?.replace(/\/+$/, '');
  const attachments = opts.attachments ?? base === undefined;
  return listFixturePatients(opts.dir).map((p) => {
    const bundle = readJsonFile(p.bundlePath) as Bundle;
    if (bundle.resourceType !== 'Bundle' || bundle.type !== 'transaction') {
      throw new AppError('config_invalid', `${p.bundlePath} is not a transaction Bundle`);
    }
    let entries = bundle.entry ?? [];
    entries = base === undefined ? dropEndpoints(entries) : entries.map((e) => rewriteEndpoint(e, base));
    if (attachments) entries = [...entries, ...mediaEntries(p, entries)];
    return { ...bundle, entry: entries.map(withStableId) };
  });
}

/**
 * `POST Type` with `fullUrl: urn:uuid:<u>` becomes `PUT Type/<u>`: the fixture uuids are derived from the
 * fixture files, so a restarted sandbox has the same patient, study and image ids, as a real EHR does.
 */
function withStableId(entry: BundleEntry): BundleEntry {
  const u = /^urn:uuid:([0-9a-f-]{36})$/.exec(entry.fullUrl ?? '')?.[1];
  const type = entry.resource?.resourceType;
  if (!u || !type || entry.request?.method !== 'POST' || entry.request.url !== type) return entry;
  return { ...entry, resource: { ...entry.resource!, id: u }, request: { method: 'PUT', url: `${type}/${u}` } };
}

function rewriteEndpoint(entry: BundleEntry, base: string): BundleEntry {
  const r = entry.resource;
  if (r?.resourceType !== 'Endpoint' || r.address !== DICOMWEB_PLACEHOLDER) return entry;
  return { ...entry, resource: { ...r, address: base } };
}

function dropEndpoints(entries: BundleEntry[]): BundleEntry[] {
  const dropped = new Set(entries.filter((e) => e.resource?.resourceType === 'Endpoint').map((e) => e.fullUrl));
  const keep = (refs: Reference<Endpoint>[] | undefined) => refs?.filter((ref) => !dropped.has(ref.reference));
  return entries
    .filter((e) => e.resource?.resourceType !== 'Endpoint')
    .map((e) => {
      if (e.resource?.resourceType !== 'ImagingStudy') return e;
      const s = e.resource;
      const study: ImagingStudy = { ...s, endpoint: keep(s.endpoint), series: s.series?.map((x) => ({ ...x, endpoint: keep(x.endpoint) })) };
      if (!study.endpoint?.length) delete study.endpoint;
      for (const x of study.series ?? []) if (!x.endpoint?.length) delete x.endpoint;
      return { ...e, resource: study };
    });
}

/** The encapsulated frames of a JPEG-in-DICOM file (one Uint8Array per frame). */
export function extractDicomFrames(bytes: Uint8Array): Uint8Array[] {
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes);
  } catch (e) {
    throw new AppError('bad_request', `not a readable DICOM file: ${String(e)}`, { cause: e });
  }
  const pixel = ds.elements.x7fe00010;
  if (!pixel?.encapsulatedPixelData) throw new AppError('bad_request', 'DICOM file has no encapsulated pixel data');
  const n = Number.parseInt(ds.string('x00280008') ?? '1', 10) || 1;
  if (!pixel.basicOffsetTable?.length) {
    if (pixel.fragments?.length === n) {
      return Array.from({ length: n }, (_, i) => dicomParser.readEncapsulatedPixelDataFromFragments(ds, pixel, i, 1));
    }
    pixel.basicOffsetTable = dicomParser.createJPEGBasicOffsetTable(ds, pixel);
  }
  return Array.from({ length: n }, (_, i) => dicomParser.readEncapsulatedImageFrame(ds, pixel, i));
}

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const SCT = 'http://snomed.info/sct';
const EYE_SITE = {
  R: { system: SCT, code: '362502000', display: 'Right eye structure' },
  L: { system: SCT, code: '362503005', display: 'Left eye structure' },
};

function mediaEntries(p: FixturePatient, entries: BundleEntry[]): BundleEntry[] {
  const find = (type: string) => entries.find((e) => e.resource?.resourceType === type);
  const patient = find('Patient');
  const encounter = find('Encounter');
  const studyEntry = find('ImagingStudy');
  const study = studyEntry?.resource as ImagingStudy | undefined;
  if (!patient?.fullUrl || !study || !studyEntry?.fullUrl) return [];
  return p.dicom.map((d) => {
    const bytes = new Uint8Array(readFileSync(d.path));
    const single = d.frames === 1;
    const content = single ? extractDicomFrames(bytes)[0] : bytes;
    const media: Media = {
      resourceType: 'Media', status: 'completed',
      identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${d.sopUid}` }],
      partOf: [{ reference: studyEntry.fullUrl }],
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/media-type', code: 'image', display: 'Image' }] },
      modality: { coding: [{ system: DCM, code: d.modality }] },
      subject: { reference: patient.fullUrl },
      ...(encounter?.fullUrl ? { encounter: { reference: encounter.fullUrl } } : {}),
      createdDateTime: study.started,
      bodySite: { coding: [EYE_SITE[d.eye]] },
      height: d.rows, width: d.columns, frames: d.frames,
      content: {
        contentType: single ? 'image/jpeg' : 'application/dicom',
        data: Buffer.from(content).toString('base64'),
        size: content.byteLength,
        hash: createHash('sha1').update(content).digest('base64'),
        title: `${d.kind} ${d.eye === 'R' ? 'right' : 'left'} eye`,
      },
      ...(d.attribution ? { note: [{ text: d.attribution }] } : {}),
    };
    return { fullUrl: `urn:uuid:${uuidFrom(`${p.key}/media/${d.sopUid}`)}`, resource: media as Resource, request: { method: 'POST', url: 'Media' } };
  });
}

function uuidFrom(name: string): string {
  const h = createHash('sha1').update(name).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
