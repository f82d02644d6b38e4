/**
 * The browser binding of the SMART app: one cookie per browser, `volmo_browser=<browserId>.<secret>`.
 *
 * - `/launch` sets it (or keeps the one the browser already proves) and the pending launch records the browser id,
 *   so `/launch/callback` is accepted only from the browser that started the launch (SMART App Launch 2.2: the
 *   app SHALL bind `state` to the browser session).
 * - Each sign-in (callback) rotates the secret, under the same name: 170 launches leave one cookie, not 170.
 * - Sessions record the browser id; `/app?session=` opens only with this browser's current (or just-rotated) secret,
 *   so the session id in the URL alone opens nothing, and two launches in one browser stay apart (keyed by session).
 * The server keeps only a hash of the secret. http on loopback (sandbox): `SameSite=Lax`. https public URL:
 * `SameSite=None; Secure`, because the app runs inside the EHR's iframe, where a Lax cookie is not sent.
 */
import { randomToken, sameDigest, sha256Hex } from './pkce.js';
import type { KeyedStore } from './ttl-store.js';

export const BROWSER_COOKIE = 'volmo_browser';
const VALUE_RE = /^([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/;
/** How long the secret before a rotation still opens sessions (requests already in flight when it rotated). */
const PREVIOUS_GRACE_MS = 60_000;

export interface BrowserRecord {
  secretHash: string;
  previousHash?: string;
  previousUntil?: number;
}

/** The value of one cookie from a Cookie header (undefined when absent). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export function browserCookie(publicUrl: string, value: string, maxAgeS: number): string {
  const secure = publicUrl.startsWith('https://');
  const parts = [`${BROWSER_COOKIE}=${value}`, 'Path=/', `Max-Age=${Math.max(1, Math.floor(maxAgeS))}`, 'HttpOnly'];
  parts.push(secure ? 'SameSite=None' : 'SameSite=Lax');
  if (secure) parts.push('Secure');
  return parts.join('; ');
}

export class BrowserBinding {
  constructor(
    private readonly store: KeyedStore<BrowserRecord>,
    private readonly opts: { publicUrl: string; ttlMs: number; now: () => number },
  ) {}

  /** The browser id this request's cookie proves (its current secret, or the previous one shortly after a rotation). */
  async verify(cookieHeader: string | undefined): Promise<string | undefined> {
    const m = VALUE_RE.exec(readCookie(cookieHeader, BROWSER_COOKIE) ?? '');
    if (!m) return undefined;
    const [, id, secret] = m as unknown as [string, string, string];
    const rec = await this.store.get(id);
    if (!rec) return undefined;
    const h = sha256Hex(secret);
    if (sameDigest(h, rec.secretHash)) return id;
    if (rec.previousHash && (rec.previousUntil ?? 0) > this.opts.now() && sameDigest(h, rec.previousHash)) return id;
    return undefined;
  }

  /**
   * At `/launch`: the browser id the cookie proves (its lifetime renewed), else a new one. Returns the Set-Cookie
   * value to send, or undefined when the store has no room.
   */
  async ensure(cookieHeader: string | undefined): Promise<{ browserId: string; setCookie?: string } | undefined> {
    const known = await this.verify(cookieHeader);
    if (known) {
      const rec = await this.store.get(known);
      if (rec && (await this.store.put(known, rec, this.opts.ttlMs))) {
        return { browserId: known, setCookie: browserCookie(this.opts.publicUrl, readCookie(cookieHeader, BROWSER_COOKIE)!, this.opts.ttlMs / 1000) };
      }
    }
    const browserId = randomToken();
    const setCookie = await this.rotate(browserId);
    return setCookie ? { browserId, setCookie } : undefined;
  }

  /** A new secret for this browser (the old one keeps working for a minute); the Set-Cookie value, or undefined when full. */
  async rotate(browserId: string): Promise<string | undefined> {
    const old = await this.store.get(browserId);
    const secret = randomToken();
    const rec: BrowserRecord = {
      secretHash: sha256Hex(secret),
      ...(old ? { previousHash: old.secretHash, previousUntil: this.opts.now() + PREVIOUS_GRACE_MS } : {}),
    };
    if (!(await this.store.put(browserId, rec, this.opts.ttlMs))) return undefined;
    return browserCookie(this.opts.publicUrl, `${browserId}.${secret}`, this.opts.ttlMs / 1000);
  }
}
