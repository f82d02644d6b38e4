/**
 * The sandbox's PACS: Debian's Orthanc with its DICOMweb plugin, started as a plain child process with a
 * generated configuration in a temporary folder. Orthanc 1.10 has no bind-address setting and listens on
 * all interfaces; `RemoteAccessAllowed: false` makes it refuse every non-loopback client, and clients here
 * only ever use 127.0.0.1. Optional HTTP basic auth (RegisteredUsers) to exercise PACS credentials.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';

export const DICOMWEB_PLUGIN_PATHS = [
  '/usr/share/orthanc/plugins/libOrthancDicomWeb.so',
  '/usr/lib/orthanc/plugins/libOrthancDicomWeb.so',
  '/usr/local/share/orthanc/plugins/libOrthancDicomWeb.so',
];

export interface OrthancSandbox {
  /** Orthanc's own REST API, e.g. http://127.0.0.1:41234 */
  restUrl: string;
  /** DICOMweb base (QIDO/WADO/STOW), e.g. http://127.0.0.1:41234/dicom-web */
  dicomWebUrl: string;
  port: number;
  /** `Basic ...` header value when started with users (the first user), else undefined. */
  authorization?: string;
  /** STOW-RS upload of one DICOM Part 10 file; resolves with its UIDs once Orthanc has stored it. */
  uploadDicom(bytes: Uint8Array): Promise<{ studyUid: string; seriesUid: string; sopUid: string }>;
  stop(): Promise<void>;
}

export interface StartOrthancOptions {
  /** HTTP port; default: a free ephemeral port. */
  port?: number;
  /** Folder for the configuration, storage and log; default: a new temporary folder, removed on stop. */
  workDir?: string;
  log: Logger;
  /** Enables HTTP basic auth with these username -> password pairs. */
  users?: Record<string, string>;
  /** Orthanc executable; default: findOrthanc(). */
  binary?: string;
  readyTimeoutMs?: number;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findDicomWebPlugin(): string | null {
  return DICOMWEB_PLUGIN_PATHS.find((p) => existsSync(p)) ?? null;
}

export const ORTHANC_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'];

/** Path of the Orthanc executable when both it and the DICOMweb plugin are installed, else null. */
export function findOrthanc(dirs: readonly string[] = ORTHANC_DIRS): string | null {
  if (!findDicomWebPlugin()) return null;
  for (const d of dirs) {
    const candidate = join(d, 'Orthanc');
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Orthanc binds every interface, so the port must be free on 0.0.0.0, not only on loopback. */
async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', () => reject(new AppError('config_invalid', `port ${port} for the sandbox PACS is already in use`)));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve()));
  });
}

function tail(text: string, lines = 20): string {
  return text.split('\n').filter(Boolean).slice(-lines).join('\n');
}

export async function startOrthanc(opts: StartOrthancOptions): Promise<OrthancSandbox> {
  const binary = opts.binary ?? findOrthanc();
  const plugin = findDicomWebPlugin();
  if (!binary || !plugin) {
    throw new AppError('config_invalid', 'Orthanc with the DICOMweb plugin is not installed (apt-get install -y orthanc orthanc-dicomweb)');
  }
  const ownDir = opts.workDir === undefined;
  const dir = opts.workDir ?? mkdtempSync(join(tmpdir(), 'volmo-orthanc-'));
  if (opts.port !== undefined) await assertPortFree(opts.port);
  const port = opts.port ?? (await freePort());
  const users = opts.users && Object.keys(opts.users).length > 0 ? opts.users : undefined;
  // a unique name tells this instance apart from any other Orthanc that already answers on the port
  const name = `volmo-sandbox-${randomBytes(6).toString('hex')}`;
  const config = {
    Name: name,
    StorageDirectory: join(dir, 'storage'),
    IndexDirectory: join(dir, 'storage'),
    Plugins: [plugin],
    HttpPort: port,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: users !== undefined,
    ...(users ? { RegisteredUsers: users } : {}),
    DicomServerEnabled: false,
    SaveJobs: false,
    DicomWeb: { Enable: true, Root: '/dicom-web/' },
  };
  const configPath = join(dir, 'orthanc.json');
  const logPath = join(dir, 'orthanc.log');
  writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });

  let output = '';
  const child: ChildProcess = spawn(binary, [configPath, `--logfile=${logPath}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (b: Buffer) => { output = (output + b.toString('utf8')).slice(-8000); };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => { exited = { code, signal }; resolve(); });
    child.once('error', (e) => { collect(Buffer.from(String(e))); exited = { code: -1, signal: null }; resolve(); });
  });
  const killOnExit = () => {
    if (!exited) child.kill('SIGKILL');
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  const [user] = Object.entries(users ?? {});
  const authorization = user ? `Basic ${Buffer.from(`${user[0]}:${user[1]}`).toString('base64')}` : undefined;
  const headers = (extra: Record<string, string> = {}) => (authorization ? { ...extra, authorization } : extra);
  const restUrl = `http://127.0.0.1:${port}`;
  const logTail = () => {
    let file = '';
    try { file = readFileSync(logPath, 'utf8'); } catch { /* not written yet */ }
    return tail(`${file}\n${output}`);
  };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 8000);
      await exitedPromise;
      clearTimeout(timer);
    }
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (exited) {
      const why = logTail();
      await stop();
      throw new AppError('upstream_error', `Orthanc exited before it was ready (code ${String((exited as { code: number | null }).code)}) on port ${port}:\n${why}`);
    }
    try {
      const res = await fetch(`${restUrl}/system`, { headers: headers(), signal: AbortSignal.timeout(1000) });
      const sys = res.ok ? ((await res.json()) as { Name?: string }) : (await res.body?.cancel(), undefined);
      if (sys?.Name === name && !exited) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      const why = logTail();
      await stop();
      throw new AppError('upstream_timeout', `Orthanc did not become ready on port ${port} within ${opts.readyTimeoutMs ?? 20_000} ms:\n${why}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  opts.log.info({ port, dicomWeb: `${restUrl}/dicom-web`, auth: users !== undefined }, 'Orthanc started');

  const dicomWebUrl = `${restUrl}/dicom-web`;
  return {
    restUrl,
    dicomWebUrl,
    port,
    authorization,
    uploadDicom: (bytes) => stowOne(dicomWebUrl, bytes, headers),
    stop,
  };
}

/** UIDs of a DICOM Part 10 file, or a typed error for anything that is not one. */
export function dicomUids(bytes: Uint8Array): { studyUid: string; seriesUid: string; sopUid: string } {
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes, { untilTag: 'x00200010' });
  } catch (e) {
    throw new AppError('bad_request', `not a DICOM Part 10 file: ${String(e)}`, { cause: e });
  }
  const studyUid = ds.string('x0020000d');
  const seriesUid = ds.string('x0020000e');
  const sopUid = ds.string('x00080018');
  if (!studyUid || !seriesUid || !sopUid) throw new AppError('bad_request', 'DICOM file lacks Study/Series/SOP Instance UID');
  return { studyUid, seriesUid, sopUid };
}

async function stowOne(
  dicomWebUrl: string,
  bytes: Uint8Array,
  headers: (extra?: Record<string, string>) => Record<string, string>,
): Promise<{ studyUid: string; seriesUid: string; sopUid: string }> {
  const uids = dicomUids(bytes);
  const boundary = `volmo-${randomBytes(12).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const res = await fetch(`${dicomWebUrl}/studies`, {
    method: 'POST',
    headers: headers({ 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, accept: 'application/dicom+json' }),
    body,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new AppError('upstream_error', `STOW-RS upload refused: HTTP ${res.status}`);
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch (e) {
    throw new AppError('upstream_error', 'STOW-RS answer is not JSON', { cause: e });
  }
  const refs = (stored as Record<string, { Value?: Record<string, { Value?: string[] }>[] }>)['00081199']?.Value ?? [];
  if (!refs.some((r) => r['00081155']?.Value?.[0] === uids.sopUid)) {
    throw new AppError('upstream_error', 'STOW-RS upload: the instance is not in the ReferencedSOPSequence of the answer');
  }
  return uids;
}
