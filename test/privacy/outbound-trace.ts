/**
 * Runs outbound-child.ts in a child process with its outbound traffic traced and refused at three levels:
 *  1. Node: net-trace.ts (dns/net/tls/dgram wrappers, and a sampler of the process's sockets in /proc);
 *  2. OS: when strace works here, every connect/sendto/sendmsg/sendmmsg syscall of the child and its
 *     threads and sub-processes is logged AND failed with EACCES (strace -e inject), so nothing leaves the
 *     machine even from native code (onnxruntime's telemetry resolves its host through the C library);
 *  3. disk: onnxruntime's telemetry writes a device id and an event cache under $HOME/.cache at start-up;
 *     the child gets an empty HOME, which must stay free of them.
 * The child's environment is stripped of every variable that would switch telemetry off by itself (the
 * switch, CI markers), so only the product's own code can turn it off.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { TraceEvent } from './net-trace.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CHILD = join(import.meta.dirname, 'outbound-child.ts');
const PRELOAD = join(import.meta.dirname, 'net-trace.ts');

/** Variables that make onnxruntime (1.30: libonnxruntime.so strings) skip telemetry on their own. */
const TELEMETRY_MASKING_ENV = [
  'ORT_DISABLE_TELEMETRY', 'ORT_TELEMETRY_DISABLED', 'ORT_RUNNING_UNIT_TESTS', 'CI', 'TF_BUILD', 'GITHUB_ACTIONS',
  'GITLAB_CI', 'CIRCLECI', 'TRAVIS', 'JENKINS_URL', 'BUILDKITE', 'SYSTEM_TEAMFOUNDATIONCOLLECTIONURI',
];

export const straceWorks: boolean = (() => {
  const r = spawnSync('strace', ['-qq', '-o', '/dev/null', 'true'], { stdio: 'ignore' });
  return r.status === 0;
})();

export interface OutboundReport {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What net-trace.ts recorded and refused in the child. */
  node: TraceEvent[];
  /** Syscalls toward a non-loopback address or any DNS port (strace layer; empty without strace). */
  os: string[];
  /** Files onnxruntime's telemetry left in the child's HOME. */
  telemetryFiles: string[];
}

/** A connect/send syscall line naming an IPv4/IPv6 peer that is not loopback, or port 53 anywhere. */
export function outsideSyscall(line: string): boolean {
  const v4 = /inet_addr\("([^"]+)"\)/.exec(line)?.[1];
  const v6 = /inet_pton\(AF_INET6, "([^"]+)"/.exec(line)?.[1];
  const port = Number(/sin6?_port=htons\((\d+)\)/.exec(line)?.[1]);
  if (v4 === undefined && v6 === undefined) return false;
  if (port === 53) return true;
  if (v4 !== undefined) return !v4.startsWith('127.') && v4 !== '0.0.0.0';
  return !['::1', '::'].includes(v6!) && !/^::ffff:127\./.test(v6!);
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => relative(dir, join(d.parentPath, d.name)));
}

export async function traceChild(args: string[], opts: { timeoutMs: number; env?: Record<string, string> }): Promise<OutboundReport> {
  const dir = mkdtempSync(join(tmpdir(), 'volmo-outbound-'));
  const home = join(dir, 'home');
  const traceFile = join(dir, 'node-trace.jsonl');
  const straceFile = join(dir, 'strace.txt');
  const env: Record<string, string> = { ...(process.env as Record<string, string>), HOME: home, XDG_CACHE_HOME: join(home, '.cache'), VOLMO_NET_TRACE_FILE: traceFile, ...opts.env };
  for (const k of TELEMETRY_MASKING_ENV) delete env[k];
  const node = [process.execPath, '--import', 'tsx', '--import', PRELOAD, CHILD, ...args];
  const syscalls = 'connect,sendto,sendmsg,sendmmsg';
  const cmd = straceWorks ? ['strace', '-f', '-qq', '-o', straceFile, '-e', `trace=${syscalls}`, '-e', `inject=${syscalls}:error=EACCES`, ...node] : node;
  const child = spawn(cmd[0]!, cmd.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
  return {
    code,
    stdout,
    stderr,
    node: read(traceFile).map((l) => JSON.parse(l) as TraceEvent),
    os: read(straceFile).filter(outsideSyscall),
    telemetryFiles: filesUnder(home),
  };
}
