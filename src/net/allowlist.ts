/**
 * Pure allowlist of outbound URL prefixes (FHIR servers, token endpoints, PACS). A URL is allowed only if
 * scheme, host and port match an entry exactly and its path starts with the entry's path at a segment
 * boundary. Which address classes an entry may resolve to is decided here too.
 */
import net from 'node:net';
import { AppError } from '../errors.js';
import { classifyAddress, type AddressClass } from './address-class.js';

export interface AllowEntryConfig {
  /** e.g. 'https://fhir.example.org/api/FHIR/R4' (a trailing slash is ignored). */
  readonly prefix: string;
  /**
   * Allow this host to resolve to private/loopback addresses (an intranet PACS, a local sandbox).
   * Entries whose host is an IP literal or `localhost` allow that address class implicitly.
   * Cloud metadata addresses are never allowed.
   */
  readonly allowPrivateNetwork?: boolean;
}

export interface AllowEntry {
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: string;
  readonly pathPrefix: string;
  readonly allowedClasses: ReadonlySet<AddressClass>;
}

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

function effectivePort(u: URL): string {
  return u.port === '' ? DEFAULT_PORT[u.protocol] : u.port;
}

function stripBrackets(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

function trimSlash(p: string): string {
  return p.endsWith('/') ? p.slice(0, -1) : p;
}

export function compileAllowEntry(entry: string | AllowEntryConfig): AllowEntry {
  const cfg = typeof entry === 'string' ? { prefix: entry } : entry;
  let u: URL;
  try {
    u = new URL(cfg.prefix);
  } catch (cause) {
    throw new AppError('config_invalid', 'outbound allowlist entry is not a URL', { cause });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new AppError('config_invalid', `outbound allowlist entry must be http(s), got ${u.protocol}`);
  }
  if (u.username || u.password || u.search || u.hash) {
    throw new AppError('config_invalid', 'outbound allowlist entry must not carry credentials, query or fragment');
  }
  const hostname = stripBrackets(u.hostname.toLowerCase());
  const allowed = new Set<AddressClass>(['public']);
  if (cfg.allowPrivateNetwork) ['private', 'loopback'].forEach((c) => allowed.add(c as AddressClass));
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) allowed.add('loopback');
  else if (net.isIP(hostname)) {
    const cls = classifyAddress(hostname);
    if (cls === 'metadata') throw new AppError('config_invalid', 'outbound allowlist entry names a metadata address');
    allowed.add(cls);
  }
  return {
    protocol: u.protocol,
    hostname,
    port: effectivePort(u),
    pathPrefix: trimSlash(u.pathname),
    allowedClasses: allowed,
  };
}

export function compileAllowlist(entries: readonly (string | AllowEntryConfig)[]): readonly AllowEntry[] {
  return Object.freeze(entries.map(compileAllowEntry));
}

/** The first entry that allows this URL, or undefined. */
export function matchAllowlist(list: readonly AllowEntry[], url: URL): AllowEntry | undefined {
  const host = stripBrackets(url.hostname.toLowerCase()).replace(/\.$/, '');
  const port = effectivePort(url);
  const path = url.pathname;
  return list.find(
    (e) =>
      e.protocol === url.protocol &&
      e.hostname.replace(/\.$/, '') === host &&
      e.port === port &&
      (e.pathPrefix === '' || path === e.pathPrefix || path.startsWith(`${e.pathPrefix}/`)),
  );
}

/** PHI-free description of a URL for messages and logs: scheme://host:port only. */
export function describeOrigin(url: URL | string): string {
  try {
    const u = typeof url === 'string' ? new URL(url) : url;
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(invalid URL)';
  }
}
