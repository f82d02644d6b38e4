/**
 * Refuses every outgoing TCP connection that is not to loopback, before it is opened. Installed for
 * every test file by test/setup.ts, so a test can never reach the network by mistake.
 */
import net from 'node:net';

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.', '::1', '[::1]']);

export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined || host === '') return true; // net defaults to localhost
  const h = host.toLowerCase();
  if (LOOPBACK_NAMES.has(h) || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return h.slice(7).startsWith('127.');
  return false;
}

export class NonLoopbackConnectionError extends Error {
  constructor(host: string) {
    super(`test network guard: refused a connection to non-loopback host ${host}`);
    this.name = 'NonLoopbackConnectionError';
  }
}

let installed = false;
export const refusedHosts: string[] = [];

export function installLoopbackGuard(): void {
  if (installed) return;
  installed = true;
  const original = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
    const first = args[0];
    let host: string | undefined;
    let path: string | undefined;
    if (Array.isArray(first)) {
      const opts = first[0] as { host?: string; path?: string } | undefined;
      host = opts?.host;
      path = opts?.path;
    } else if (first !== null && typeof first === 'object') {
      host = (first as { host?: string }).host;
      path = (first as { path?: string }).path;
    } else if (typeof first === 'string' && Number.isNaN(Number(first))) {
      path = first; // unix socket path
    } else if (typeof args[1] === 'string') {
      host = args[1];
    }
    if (path === undefined && !isLoopbackHost(host)) {
      refusedHosts.push(String(host));
      throw new NonLoopbackConnectionError(String(host));
    }
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;
}
