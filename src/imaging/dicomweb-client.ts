/**
 * DICOMweb client: QIDO-RS search, WADO-RS rendered JPEG, native Part 10 (stored transfer syntax) and
 * frames. HTTP goes through an injected HttpFetch (the guarded fetch in production). UIDs are validated
 * before they enter a URL, PACS credentials are sent only to this client's base URL, and error messages
 * carry the PACS origin only (no UIDs).
 */
import { AppError, type ErrorCode } from '../errors.js';
import type { HttpFetch, HttpResponse } from './http.js';
import { safeOrigin } from './http.js';
import { parseMultipart, parseMediaType, type MultipartPart } from './multipart.js';

export type PacsAuth =
  | { readonly kind: 'none' }
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  | { readonly kind: 'bearer'; readonly token: string | (() => Promise<string>) };

export interface DicomWebClientOptions {
  /** WADO-RS/QIDO-RS root, e.g. http://pacs/dicom-web (no /studies). */
  readonly baseUrl: string;
  readonly fetch: HttpFetch;
  readonly auth?: PacsAuth;
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
}

export interface InstanceIds {
  readonly study: string;
  readonly series: string;
  readonly instance: string;
}

/** One QIDO-RS result in DICOM JSON (PS3.18 F.2): tag → { vr, Value }. */
export type DicomJson = Readonly<Record<string, { readonly vr?: string; readonly Value?: readonly unknown[] }>>;

export interface WadoAddress {
  readonly baseUrl: string;
  readonly study?: string;
  readonly series?: string;
}

const UID_RE = /^[0-9]+(\.[0-9]+)*$/;

/** A DICOM UID as found in FHIR (`urn:oid:` prefix optional) → the bare UID, or undefined if invalid. */
export function normaliseUid(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const v = value.trim().replace(/^urn:oid:/i, '');
  return v.length <= 64 && UID_RE.test(v) ? v : undefined;
}

function uid(value: string, what: string): string {
  const v = normaliseUid(value);
  if (!v) throw new AppError('bad_request', `invalid DICOM ${what} UID`);
  return v;
}

/**
 * Endpoint.address conventions differ: a WADO-RS base (client appends /studies/{uid}) or the study URL
 * itself (IHE examples; optionally down to a series). Splits either into base + UIDs.
 */
export function parseWadoAddress(address: string): WadoAddress {
  const url = new URL(address);
  url.search = '';
  url.hash = '';
  const m = url.pathname.match(/^(.*?)\/studies\/([^/]+)(?:\/series\/([^/]+))?\/?$/);
  if (!m) return { baseUrl: url.toString().replace(/\/+$/, '') };
  url.pathname = m[1];
  const study = normaliseUid(decodeURIComponent(m[2]));
  if (!study) throw new AppError('bad_request', 'endpoint address holds an invalid study UID');
  const series = m[3] ? normaliseUid(decodeURIComponent(m[3])) : undefined;
  return { baseUrl: url.toString().replace(/\/+$/, ''), study, ...(series ? { series } : {}) };
}

export class PacsError extends AppError {
  readonly upstreamStatus?: number;
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; upstreamStatus?: number } = {}) {
    super(code, message, { cause: options.cause, expose: false });
    this.name = 'PacsError';
    if (options.upstreamStatus !== undefined) this.upstreamStatus = options.upstreamStatus;
  }
}

export const ACCEPT = Object.freeze({
  json: 'application/dicom+json',
  jpeg: 'image/jpeg',
  part10: 'multipart/related; type="application/dicom"; transfer-syntax=*',
  frames: 'multipart/related; type="application/octet-stream"; transfer-syntax=*',
});

export class DicomWebClient {
  readonly baseUrl: string;
  private readonly opts: DicomWebClientOptions;

  constructor(opts: DicomWebClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.opts = opts;
  }

  searchStudies(query: Readonly<Record<string, string>> = {}): Promise<DicomJson[]> {
    return this.qido('/studies', query);
  }

  searchSeries(study: string, query: Readonly<Record<string, string>> = {}): Promise<DicomJson[]> {
    return this.qido(`/studies/${uid(study, 'study')}/series`, query);
  }

  searchInstances(study: string, series?: string, query: Readonly<Record<string, string>> = {}): Promise<DicomJson[]> {
    const s = series ? `/series/${uid(series, 'series')}` : '';
    return this.qido(`/studies/${uid(study, 'study')}${s}/instances`, query);
  }

  /** Server-rendered JPEG of an instance, or of one frame (1-based) of a multi-frame instance. */
  async retrieveRendered(ids: InstanceIds, options: { frame?: number; viewport?: readonly [number, number] } = {}): Promise<Buffer> {
    let path = this.instancePath(ids);
    if (options.frame !== undefined) path += `/frames/${positiveInt(options.frame)}`;
    path += '/rendered';
    const q = options.viewport ? `?viewport=${positiveInt(options.viewport[0])},${positiveInt(options.viewport[1])}` : '';
    const res = await this.get(path + q, ACCEPT.jpeg);
    const ct = parseMediaType(res.header('content-type') ?? '').type;
    if (ct !== 'image/jpeg') throw new PacsError('upstream_error', `${this.origin}: rendered answer is ${ct || 'untyped'}, not image/jpeg`);
    return res.body;
  }

  /** The stored Part 10 object, unchanged (transfer-syntax=*). */
  async retrieveInstance(ids: InstanceIds): Promise<Buffer> {
    const res = await this.get(this.instancePath(ids), ACCEPT.part10);
    const parts = this.multipart(res);
    const part = parts.find((p) => !p.contentType || parseMediaType(p.contentType).type === 'application/dicom');
    if (!part) throw new PacsError('upstream_error', `${this.origin}: no application/dicom part in the answer`);
    return part.body;
  }

  /** Frames (1-based) in their stored transfer syntax; each part keeps its content type. */
  async retrieveFrames(ids: InstanceIds, frames: readonly number[]): Promise<MultipartPart[]> {
    const list = frames.map(positiveInt).join(',');
    const res = await this.get(`${this.instancePath(ids)}/frames/${list}`, ACCEPT.frames);
    return this.multipart(res);
  }

  private get origin(): string {
    return safeOrigin(this.baseUrl);
  }

  private instancePath(ids: InstanceIds): string {
    return `/studies/${uid(ids.study, 'study')}/series/${uid(ids.series, 'series')}/instances/${uid(ids.instance, 'instance')}`;
  }

  private multipart(res: HttpResponse): MultipartPart[] {
    return parseMultipart(res.body, res.header('content-type') ?? '');
  }

  private async qido(path: string, query: Readonly<Record<string, string>>): Promise<DicomJson[]> {
    const qs = new URLSearchParams(query).toString();
    const res = await this.get(path + (qs ? `?${qs}` : ''), ACCEPT.json);
    if (res.status === 204 || res.body.length === 0) return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body.toString('utf8'));
    } catch (err) {
      throw new PacsError('upstream_error', `${this.origin}: QIDO answer is not JSON`, { cause: err });
    }
    if (!Array.isArray(parsed)) throw new PacsError('upstream_error', `${this.origin}: QIDO answer is not a JSON array`);
    return parsed as DicomJson[];
  }

  private async headers(accept: string): Promise<Record<string, string>> {
    const h: Record<string, string> = { accept };
    const a = this.opts.auth;
    if (a?.kind === 'basic') h.authorization = `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}`;
    if (a?.kind === 'bearer') h.authorization = `Bearer ${typeof a.token === 'string' ? a.token : await a.token()}`;
    return h;
  }

  private async get(path: string, accept: string): Promise<HttpResponse> {
    const res = await this.opts.fetch(this.baseUrl + path, {
      method: 'GET',
      headers: await this.headers(accept),
      timeoutMs: this.opts.timeoutMs,
      maxBytes: this.opts.maxBytes,
    });
    if (res.ok) return res;
    const s = res.status;
    const code: ErrorCode = s === 404 ? 'not_found' : s === 401 || s === 403 ? 'upstream_refused' : s === 406 || s === 415 ? 'unsupported_media_type' : 'upstream_error';
    throw new PacsError(code, `${this.origin}: DICOMweb answered HTTP ${s}`, { upstreamStatus: s });
  }
}

function positiveInt(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new AppError('bad_request', 'frame/viewport must be a positive integer');
  return n;
}

/** First value of a DICOM JSON attribute (tag as 8 hex digits, e.g. '0020000D'). */
export function jsonValue(obj: DicomJson, tag: string): unknown {
  return obj[tag.toUpperCase()]?.Value?.[0];
}

export function jsonString(obj: DicomJson, tag: string): string | undefined {
  const v = jsonValue(obj, tag);
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}
