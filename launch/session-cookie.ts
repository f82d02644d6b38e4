/**
 * The app-session cookie. Each launch gets its own cookie, named after its (URL-borne) session id, so two
 * app instances in one browser never share or overwrite a session (standards.md §6.8). The cookie holds a
 * separate secret whose hash the server keeps: the session id in the URL alone opens nothing.
 * http on loopback (sandbox): `SameSite=Lax`. https public URL: `SameSite=None; Secure`, because the app
 * runs inside the EHR's iframe, where a Lax cookie is not sent.
 */

const PREFIX = 'volmo_app_';

export function sessionCookieName(sessionId: string): string {
  return `${PREFIX}${sessionId}`;
}

export function sessionCookie(publicUrl: string, sessionId: string, secret: string, maxAgeS: number): string {
  const secure = publicUrl.startsWith('https://');
  const parts = [`${sessionCookieName(sessionId)}=${secret}`, 'Path=/app', `Max-Age=${Math.max(1, Math.floor(maxAgeS))}`, 'HttpOnly'];
  parts.push(secure ? 'SameSite=None' : 'SameSite=Lax');
  if (secure) parts.push('Secure');
  return parts.join('; ');
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
