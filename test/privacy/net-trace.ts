/**
 * Preloaded into a child process (`node --import tsx --import ./test/privacy/net-trace.ts ...`): records and
 * refuses every non-loopback name lookup or connection made through Node (dns, dns.promises and Resolver
 * lookups, net/tls connects, dgram sends), and samples the process's own sockets in /proc for connections to
 * non-loopback peers (what native code opens without Node). One JSON line per event goes to
 * $VOLMO_NET_TRACE_FILE. Native DNS is seen by the parent's strace layer (outbound-trace.ts), not here.
 */
import { appendFileSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import { syncBuiltinESMExports } from 'node:module';
import tls from 'node:tls';
import { installLoopbackGuard, isLoopbackHost, NonLoopbackConnectionError } from '../helpers/loopback-guard.js';

const out = process.env.VOLMO_NET_TRACE_FILE;
if (!out) throw new Error('net-trace: VOLMO_NET_TRACE_FILE is not set');

export interface TraceEvent {
  layer: 'dns' | 'net' | 'tls' | 'dgram' | 'proc';
  call: string;
  host: string;
}

function record(e: TraceEvent): void {
  appendFileSync(out!, `${JSON.stringify(e)}\n`);
}

function refuse(layer: TraceEvent['layer'], call: string, host: string): never {
  record({ layer, call, host });
  throw new NonLoopbackConnectionError(host);
}

/** Wraps every lookup/resolve/reverse function of `target` so that non-loopback names are refused. */
function guardResolver(target: Record<string, unknown>, prefix: string): void {
  for (const key of Object.keys(target)) {
    const fn = target[key];
    if (typeof fn !== 'function' || !/^(lookup|resolve|reverse)/.test(key)) continue;
    target[key] = function guarded(this: unknown, host: unknown, ...rest: unknown[]) {
      if (typeof host === 'string' && !isLoopbackHost(host)) refuse('dns', `${prefix}.${key}`, host);
      return (fn as (...a: unknown[]) => unknown).call(this, host, ...rest);
    };
  }
}

guardResolver(dns as unknown as Record<string, unknown>, 'dns');
guardResolver(dns.promises as unknown as Record<string, unknown>, 'dns.promises');
guardResolver(dns.Resolver.prototype as unknown as Record<string, unknown>, 'dns.Resolver');
guardResolver(dns.promises.Resolver.prototype as unknown as Record<string, unknown>, 'dns.promises.Resolver');

installLoopbackGuard();
const guardedConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function traced(this: net.Socket, ...args: unknown[]) {
  try {
    return (guardedConnect as (...a: unknown[]) => net.Socket).apply(this, args);
  } catch (e) {
    if (e instanceof NonLoopbackConnectionError) record({ layer: 'net', call: 'net.Socket.connect', host: e.message.split(' ').pop()! });
    throw e;
  }
} as typeof net.Socket.prototype.connect;

const tlsConnect = tls.connect;
tls.connect = function traced(...args: unknown[]) {
  const first = args[0];
  const host = typeof first === 'object' && first !== null ? (first as { host?: string }).host : typeof args[1] === 'string' ? args[1] : undefined;
  if (!isLoopbackHost(host)) refuse('tls', 'tls.connect', String(host));
  return (tlsConnect as (...a: unknown[]) => tls.TLSSocket)(...args);
} as typeof tls.connect;

const dgramSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function traced(this: dgram.Socket, ...args: unknown[]) {
  const host = args.find((a, i) => i > 0 && typeof a === 'string') as string | undefined;
  if (host !== undefined && !isLoopbackHost(host)) refuse('dgram', 'dgram.Socket.send', host);
  return (dgramSend as (...a: unknown[]) => void).apply(this, args);
} as typeof dgram.Socket.prototype.send;
const dgramConnect = dgram.Socket.prototype.connect;
dgram.Socket.prototype.connect = function traced(this: dgram.Socket, port: number, host?: unknown, ...rest: unknown[]) {
  if (typeof host === 'string' && !isLoopbackHost(host)) refuse('dgram', 'dgram.Socket.connect', host);
  return (dgramConnect as (...a: unknown[]) => void).call(this, port, host, ...rest);
} as typeof dgram.Socket.prototype.connect;

// ESM `import { lookup } from 'node:dns'` sees the wrapped functions too.
syncBuiltinESMExports();

// --- OS level: this process's sockets (all threads share the fd table), peers read from /proc/self/net.

/** A /proc/net address ("0100007F:0035", IPv6 as four little-endian words) as bytes and port. */
export function parseProcAddress(hex: string): { bytes: number[]; port: number } {
  const [addr, port] = hex.split(':');
  const bytes: number[] = [];
  for (let w = 0; w < addr.length; w += 8) for (let b = 3; b >= 0; b--) bytes.push(parseInt(addr.slice(w + 2 * b, w + 2 * b + 2), 16));
  return { bytes, port: parseInt(port, 16) };
}

/** A socket peer worth reporting: connected (not all zero) and not loopback. */
export function isOutsidePeer(bytes: number[]): boolean {
  if (bytes.every((b) => b === 0)) return false;
  if (bytes.length === 4) return bytes[0] !== 127;
  const v4mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (v4mapped) return bytes[12] !== 127;
  return !(bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1);
}

const seen = new Set<string>();
function sampleSockets(): void {
  let inodes: Set<string>;
  try {
    inodes = new Set(readdirSync('/proc/self/fd').map((fd) => {
      try {
        return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1] ?? '';
      } catch {
        return '';
      }
    }).filter(Boolean));
  } catch {
    return; // no /proc (not Linux): the Node and strace layers still hold
  }
  for (const table of ['tcp', 'tcp6', 'udp', 'udp6']) {
    let rows: string[];
    try {
      rows = readFileSync(`/proc/self/net/${table}`, 'utf8').split('\n').slice(1);
    } catch {
      continue;
    }
    for (const row of rows) {
      const cols = row.trim().split(/\s+/);
      if (cols.length < 10 || !inodes.has(cols[9])) continue;
      const peer = parseProcAddress(cols[2]);
      const key = `${table}:${cols[2]}`;
      if (isOutsidePeer(peer.bytes) && !seen.has(key)) {
        seen.add(key);
        record({ layer: 'proc', call: table, host: `${peer.bytes.join('.')}:${peer.port}` });
      }
    }
  }
}
if (process.platform === 'linux') setInterval(sampleSockets, 20).unref();
