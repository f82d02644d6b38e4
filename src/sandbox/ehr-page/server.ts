/**
 * The sandbox EHR page: a small web page, served by the EHR simulator's loopback server, for trying
 * volmo-cds in a browser. Pick a fixture patient; "Open the chart" sends a signed patient-view hook call and
 * "Sign an eye-exam order" a signed order-sign call (src/sandbox/ehr-access.ts) to the service; the cards come
 * back as plain data (card-view.ts) the page renders as an EHR would; a card's smart link or "Launch VOLMO"
 * does a real EHR launch (a one-time `launch` from the sandbox authorization server + `iss`) into a 480 px
 * side panel (an iframe; the sandbox adds this page's origin to the app's CSP frame-ancestors) or a new tab.
 *
 * The page's script talks to this server with JSON `fetch` only: POSTs must carry `application/json` and this
 * page's own Origin (a form or page elsewhere cannot post here), and the Host must be a loopback name (no DNS
 * rebinding). Logs carry the route, hook and status only: no patient ids, names or tokens. SANDBOX ONLY.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from '../../log.js';
import { DEFAULT_SANDBOX_USER } from '../auth-server.js';
import type { LaunchContext } from '../auth/launch-contexts.js';
import { ehrToken, sandboxHookCall, type EhrToken } from '../ehr-access.js';
import type { EhrSimulator } from '../ehr-simulator.js';
import { FIXTURE_MRN_SYSTEM, listFixturePatients } from '../fixtures.js';
import { READ_SCOPES } from '../sandbox-clients.js';
import { cardViews } from './card-view.js';
import { renderEhrPage } from './page-html.js';

export interface EhrPageDeps {
  /** The service's public base URL: hooks go to <it>/cds-services/…, launches to <it>/launch. */
  serviceUrl: string;
  fhirBaseUrl: string;
  /** The sandbox authorization server's issuer: the launch passes through it inside the side panel. */
  authIssuer: string;
  ehr: EhrSimulator;
  createLaunch(ctx: LaunchContext): string;
  log: Logger;
  /** The signed-in sandbox clinician (hook userId, launch fhirUser). */
  clinician?: string;
  /** How long one hook call may take (default 120 s). */
  hookTimeoutMs?: number;
}

/** What the EHR itself reads (the chart's patients and what was filed to it). */
export const EHR_PAGE_SCOPES = [...READ_SCOPES, 'DiagnosticReport', 'Provenance'].map((r) => `system/${r}.rs`);

const ID_RE = /^[A-Za-z0-9.-]{1,64}$/;
const HOOKS = ['patient-view', 'order-sign'] as const;
const MAX_BODY = 16 * 1024;

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface PatientSummary {
  id: string;
  name: string;
  birthDate?: string;
  gender?: string;
  mrn?: string;
  /** The fixture's short name (diabetic, amd, …) when it is one. */
  fixture?: string;
  /** The fixture's scenario in a sentence (what it exercises). */
  scenario?: string;
}

function patientName(p: Record<string, unknown>): string {
  const n = (p.name as { text?: string; given?: string[]; family?: string }[] | undefined)?.[0];
  return (n?.text ?? [...(n?.given ?? []), n?.family ?? ''].join(' ').trim()) || '(no name)';
}

export function createEhrPageHandler(deps: EhrPageDeps): RequestListener {
  const clinician = deps.clinician ?? DEFAULT_SANDBOX_USER;
  const launchUrl = `${deps.serviceUrl.replace(/\/+$/, '')}/launch`;
  const serviceOrigin = new URL(deps.serviceUrl).origin;
  const frameOrigins = [...new Set([serviceOrigin, new URL(deps.authIssuer).origin])];
  const fixtureByMrn = new Map(listFixturePatients().map((f) => [f.mrn, f]));
  let token: { value: EhrToken; until: number } | undefined;

  const accessToken = async (): Promise<EhrToken> => {
    if (token && token.until > Date.now()) return token.value;
    const value = await ehrToken(deps.fhirBaseUrl, deps.ehr, EHR_PAGE_SCOPES);
    token = { value, until: Date.now() + Math.max(0, value.expires_in - 30) * 1000 };
    return value;
  };

  const fhirGet = async (path: string): Promise<Record<string, unknown> | undefined> => {
    const t = await accessToken();
    const res = await fetch(`${deps.fhirBaseUrl}/${path}`, { headers: { authorization: `Bearer ${t.access_token}`, accept: 'application/fhir+json' }, signal: AbortSignal.timeout(10_000) });
    if (res.status === 404 || res.status === 410) return undefined;
    if (!res.ok) throw new HttpProblem(502, `the sandbox FHIR server answered ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  };

  const entries = (bundle: Record<string, unknown> | undefined) => ((bundle?.entry as { resource: Record<string, unknown> }[] | undefined) ?? []).map((e) => e.resource);

  const patients = async (): Promise<PatientSummary[]> =>
    entries(await fhirGet('Patient?_count=100')).map((p) => {
      const mrn = (p.identifier as { system?: string; value?: string }[] | undefined)?.find((i) => i.system === FIXTURE_MRN_SYSTEM)?.value;
      const fixture = mrn ? fixtureByMrn.get(mrn) : undefined;
      return {
        id: String(p.id),
        name: patientName(p),
        ...(typeof p.birthDate === 'string' ? { birthDate: p.birthDate } : {}),
        ...(typeof p.gender === 'string' ? { gender: p.gender } : {}),
        ...(mrn ? { mrn } : {}),
        ...(fixture ? { fixture: fixture.key, scenario: fixture.description } : {}),
      };
    });

  /** A patient id from the request that names a patient on the sandbox FHIR server. */
  const knownPatient = async (v: unknown): Promise<string> => {
    if (typeof v !== 'string' || !ID_RE.test(v)) throw new HttpProblem(400, 'patientId must be a FHIR id');
    if (!(await fhirGet(`Patient/${v}`))) throw new HttpProblem(404, 'no such patient on the sandbox FHIR server');
    return v;
  };

  /** The encounter the chart is open in, as an EHR knows it: the patient's latest Encounter, if any. */
  const openEncounter = async (patientId: string): Promise<string | undefined> => {
    const e = entries(await fhirGet(`Encounter?patient=Patient/${patientId}&_sort=-date&_count=1`))[0];
    return typeof e?.id === 'string' ? e.id : undefined;
  };

  const hook = async (body: Record<string, unknown>) => {
    const name = body.hook;
    if (!HOOKS.includes(name as (typeof HOOKS)[number])) throw new HttpProblem(400, `hook must be one of ${HOOKS.join(', ')}`);
    const patientId = await knownPatient(body.patientId);
    const call = await sandboxHookCall({ serviceBaseUrl: deps.serviceUrl, fhirBaseUrl: deps.fhirBaseUrl, token: await accessToken(), patientId, hook: name as (typeof HOOKS)[number], prefetch: true, withToken: true });
    call.context.userId = clinician;
    const encounterId = await openEncounter(patientId);
    if (encounterId) call.context.encounterId = encounterId;
    let res;
    try {
      res = await deps.ehr.callHook(call, { signal: AbortSignal.timeout(deps.hookTimeoutMs ?? 120_000) });
    } catch (e) {
      deps.log.warn({ hook: name, error: (e as Error).name }, 'sandbox EHR page: the service did not answer the hook call');
      throw new HttpProblem(502, `the service at ${serviceOrigin} did not answer (is it running?)`);
    }
    deps.log.info({ hook: name, status: res.status }, 'sandbox EHR page: hook call answered');
    if (res.status !== 200) {
      const detail = (res.body as { message?: unknown; error?: unknown } | null)?.message ?? (res.body as { error?: unknown } | null)?.error;
      return { status: res.status, cards: [], error: typeof detail === 'string' ? detail.slice(0, 300) : `HTTP ${res.status}` };
    }
    return { status: res.status, cards: cardViews(res.body) };
  };

  const launch = async (body: Record<string, unknown>) => {
    const patient = await knownPatient(body.patientId);
    // The EHR launches only its registered app: this service's launch URL, whatever a card says.
    if (body.url !== undefined && body.url !== launchUrl) throw new HttpProblem(400, `a SMART link must point at the registered app (${launchUrl})`);
    const appContext = body.appContext;
    if (appContext !== undefined && (typeof appContext !== 'string' || appContext.length > 4096)) throw new HttpProblem(400, 'appContext must be a string of at most 4096 characters');
    const encounter = await openEncounter(patient);
    const launchId = deps.createLaunch({ patient, fhirUser: clinician, ...(encounter ? { encounter } : {}), ...(appContext !== undefined ? { appContext } : {}) });
    deps.log.info({ fromCard: appContext !== undefined }, 'sandbox EHR page: EHR launch created');
    return { url: `${launchUrl}?${new URLSearchParams({ iss: deps.fhirBaseUrl, launch: launchId })}` };
  };

  /** What was filed to the chart for the patient: reports and notes, newest first. */
  const chart = async (patientId: unknown) => {
    const id = await knownPatient(patientId);
    const reports = entries(await fhirGet(`DiagnosticReport?subject=Patient/${id}&_count=50`)).map((r) => ({
      type: 'DiagnosticReport',
      id: String(r.id),
      status: String(r.status ?? ''),
      title: String((r.code as { text?: string } | undefined)?.text ?? 'Diagnostic report'),
      text: typeof r.conclusion === 'string' ? r.conclusion.slice(0, 2000) : '',
      performer: ((r.performer as { reference?: string }[] | undefined) ?? []).map((p) => p.reference ?? '').filter(Boolean),
      updated: String((r.meta as { lastUpdated?: string } | undefined)?.lastUpdated ?? ''),
    }));
    const notes = entries(await fhirGet(`DocumentReference?subject=Patient/${id}&_count=50`)).map((d) => ({
      type: 'DocumentReference',
      id: String(d.id),
      status: `${String(d.status ?? '')}${d.docStatus ? ` / ${String(d.docStatus)}` : ''}`,
      title: String(d.description ?? (d.type as { text?: string } | undefined)?.text ?? 'Note').slice(0, 300),
      text: noteText(d),
      performer: ((d.author as { reference?: string }[] | undefined) ?? []).map((p) => p.reference ?? '').filter(Boolean),
      updated: String((d.meta as { lastUpdated?: string } | undefined)?.lastUpdated ?? ''),
    }));
    return { entries: [...reports, ...notes].sort((a, b) => b.updated.localeCompare(a.updated)) };
  };

  return (req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpProblem ? e.status : 500;
      if (!(e instanceof HttpProblem)) deps.log.warn({ error: (e as Error)?.name }, 'sandbox EHR page: request failed');
      if (!res.headersSent) sendJson(res, status, { error: e instanceof HttpProblem ? e.message : 'internal error' });
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = req.headers.host ?? '';
    if (!isLoopbackHost(host)) throw new HttpProblem(421, 'the sandbox EHR page answers only on loopback host names');
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (req.method === 'GET' && url.pathname === '/') return sendPage(res, frameOrigins);
    if (req.method === 'GET' && url.pathname === '/api/patients') return sendJson(res, 200, { clinician, patients: await patients() });
    if (req.method === 'GET' && url.pathname === '/api/chart') return sendJson(res, 200, await chart(url.searchParams.get('patient') ?? undefined));
    if (req.method === 'POST' && (url.pathname === '/api/hook' || url.pathname === '/api/launch')) {
      const body = await readJson(req, host);
      return sendJson(res, 200, url.pathname === '/api/hook' ? await hook(body) : await launch(body));
    }
    if (url.pathname === '/' || url.pathname.startsWith('/api/')) throw new HttpProblem(405, 'method not allowed');
    throw new HttpProblem(404, 'not found');
  }
}

/** The text of a note's first text/plain attachment sent inline (at most 2,000 characters). */
function noteText(d: Record<string, unknown>): string {
  const a = ((d.content as { attachment?: { contentType?: string; data?: string } }[] | undefined) ?? [])[0]?.attachment;
  if (!a?.data || !(a.contentType ?? '').startsWith('text/plain')) return '';
  return Buffer.from(a.data, 'base64').toString('utf8').slice(0, 2000);
}

export function isLoopbackHost(host: string): boolean {
  return /^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/.test(host);
}

/** A POST body from this page's own script: JSON, from this origin, small. */
async function readJson(req: IncomingMessage, host: string): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpProblem(415, 'send application/json');
  const origin = req.headers.origin;
  if (origin !== `http://${host}`) throw new HttpProblem(403, "requests must come from this page's own script (Origin)");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpProblem(413, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpProblem(400, 'the body is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpProblem(400, 'the body must be a JSON object');
  return v as Record<string, unknown>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(JSON.stringify(body));
}

function sendPage(res: ServerResponse, frameOrigins: readonly string[]): void {
  const nonce = randomBytes(16).toString('base64');
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "connect-src 'self'",
      `frame-src ${frameOrigins.join(' ')}`,
      "img-src 'self' data:",
      "form-action 'none'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
  });
  res.end(renderEhrPage(nonce));
}
