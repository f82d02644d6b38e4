/**
 * SMART App Launch (EHR launch and standalone) for the clinician-facing app:
 *   GET /launch?iss=&launch=   refuse an iss outside the FHIR allowlist before any request, discover the
 *                              SMART configuration, keep state + PKCE verifier server-side (keyed by state),
 *                              302 to the authorization endpoint;
 *   GET /launch/callback       one-time state, code exchange, token kept server-side in a session, 302 to /app;
 *   GET /app?session=          the launched patient's banner and latest AI draft(s).
 * Tokens never leave the server: not in URLs, pages or logs. Errors are HTML pages (this is a browser flow).
 */
import express, { type Request, type Response, type Router } from 'express';
import type { AnalysisCache } from '../src/analysis/analysis-cache.js';
import { isAppError } from '../src/errors.js';
import { DEFAULT_EHR_TOKEN_LIFETIME_S } from '../src/fhir/token-source.js';
import type { Logger } from '../src/log.js';
import { describeOrigin } from '../src/net/allowlist.js';
import type { GuardedFetch } from '../src/net/guarded-fetch.js';
import { renderAppPage } from './app-page.js';
import { errorPage } from './pages.js';
import { codeChallengeS256, randomToken, sameDigest, sha256Hex, TOKEN_RE } from './pkce.js';
import { readCookie, sessionCookie, sessionCookieName } from './session-cookie.js';
import { authorizeUrl, discoverSmartConfiguration, exchangeCode } from './smart-oauth.js';
import { MemoryKeyedStore, type KeyedStore } from './ttl-store.js';

export interface PendingLaunch {
  iss: string;
  tokenEndpoint: string;
  codeVerifier: string;
  ehrLaunch: boolean;
}

export interface AppSession {
  /** sha256 of the cookie secret bound to this session. */
  secretHash: string;
  iss: string;
  accessToken: string;
  /** Epoch ms when the access token expires (the token source refuses it after that). */
  tokenExpiresAt: number;
  patient?: string;
  encounter?: string;
  needPatientBanner: boolean;
  scope: string;
}

export interface LaunchDeps {
  publicUrl: string;
  clientId: string;
  /** Requested scopes for an EHR launch (must include `launch`); a standalone launch asks `launch/patient` instead. */
  scopes: string;
  fetch: GuardedFetch;
  /** Whether a launch `iss` names a FHIR server this service trusts (the same check hook fhirServer URLs get). */
  isFhirServerAllowed: (url: string) => boolean;
  analyses: Pick<AnalysisCache, 'recentForSubject'>;
  log: Logger;
  pending?: KeyedStore<PendingLaunch>;
  sessions?: KeyedStore<AppSession>;
  /** How long a started launch may take to come back (default 10 min). */
  stateTtlMs?: number;
  /** Upper bound of an app session; shorter when the token expires sooner (default 1 h). */
  sessionMaxMs?: number;
  now?: () => number;
}


function page(res: Response, status: number, html: string): void {
  res
    .status(status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      // No scripts at all; the app is framed by the EHR, so frame-ancestors is left to the deployment.
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'",
    })
    .send(html);
}

function param(req: Request, name: string, max: number): string | undefined {
  const v = req.query[name];
  return typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined;
}

function normaliseIss(raw: string): string | undefined {
  try {
    const u = new URL(raw);
    if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password || u.search || u.hash) return undefined;
    return u.href.replace(/\/+$/, '');
  } catch {
    return undefined;
  }
}

export function createLaunchRouter(deps: LaunchDeps): Router {
  const now = deps.now ?? Date.now;
  const pending = deps.pending ?? new MemoryKeyedStore<PendingLaunch>({ maxEntries: 10_000, now });
  const sessions = deps.sessions ?? new MemoryKeyedStore<AppSession>({ maxEntries: 10_000, now });
  const stateTtlMs = deps.stateTtlMs ?? 10 * 60_000;
  const sessionMaxMs = deps.sessionMaxMs ?? 3600_000;
  const redirectUri = `${deps.publicUrl}/launch/callback`;
  const log = deps.log;
  const router = express.Router();

  const upstreamFailed = (res: Response, err: unknown, step: string) => {
    // Codes and PHI-free reasons only (NetError messages carry scheme://host:port at most).
    log.warn({ step, code: isAppError(err) ? err.code : 'internal', reason: (err as { reason?: string }).reason }, 'SMART launch failed');
    page(res, 502, errorPage('The EHR could not be reached', `The app could not complete the sign-in with the EHR (${step}). Try again; if it keeps failing, tell your EHR support team.`));
  };

  router.get('/launch', async (req, res) => {
    const rawIss = param(req, 'iss', 2048);
    const launch = req.query.launch === undefined ? undefined : param(req, 'launch', 1024);
    if (!rawIss || (req.query.launch !== undefined && !launch)) {
      return page(res, 400, errorPage('Launch refused', 'The launch request needs an iss (FHIR server URL) and, for an EHR launch, a launch value.'));
    }
    const iss = normaliseIss(rawIss);
    if (!iss || !deps.isFhirServerAllowed(iss)) {
      log.warn({ issOrigin: iss ? describeOrigin(iss) : 'invalid' }, 'SMART launch refused: iss not on the FHIR allowlist');
      return page(res, 400, errorPage('Launch refused', 'This FHIR server is not one this service is configured to trust.'));
    }
    let smart;
    try {
      smart = await discoverSmartConfiguration(deps.fetch, iss);
    } catch (err) {
      return upstreamFailed(res, err, 'discovery');
    }
    if (!deps.fetch.allows(smart.token_endpoint)) {
      log.warn({ tokenOrigin: describeOrigin(smart.token_endpoint) }, 'SMART launch refused: token endpoint not on the outbound allowlist');
      return page(res, 502, errorPage('Launch refused', "The EHR's token endpoint is not on this service's outbound allowlist (VOLMO_SMART_AUTH_ALLOWLIST)."));
    }
    const state = randomToken();
    const codeVerifier = randomToken();
    if (!(await pending.put(state, { iss, tokenEndpoint: smart.token_endpoint, codeVerifier, ehrLaunch: launch !== undefined }, stateTtlMs))) {
      log.warn('SMART launch refused: too many launches in progress');
      return page(res, 503, errorPage('Busy', 'Too many sign-ins are in progress. Please try again in a minute.'));
    }
    const scope = launch !== undefined ? deps.scopes : deps.scopes.split(' ').map((s) => (s === 'launch' ? 'launch/patient' : s)).join(' ');
    const location = authorizeUrl(smart.authorization_endpoint, {
      clientId: deps.clientId, redirectUri, scope, state, iss, codeChallenge: codeChallengeS256(codeVerifier), ...(launch !== undefined ? { launch } : {}),
    });
    log.info({ issOrigin: describeOrigin(iss), ehrLaunch: launch !== undefined }, 'SMART launch: redirecting to authorize');
    res.set('Cache-Control', 'no-store').redirect(302, location);
  });

  router.get('/launch/callback', async (req, res) => {
    const state = param(req, 'state', 64);
    const found = state && TOKEN_RE.test(state) ? await pending.take(state) : undefined;
    if (!found) return page(res, 400, errorPage('Sign-in expired', 'This sign-in is unknown, was already used, or has expired.'));
    const error = param(req, 'error', 64);
    if (error) {
      const code = /^[a-z_]{1,40}$/.test(error) ? error : 'error';
      log.warn({ error: code }, 'SMART launch: authorization refused by the EHR');
      return page(res, 400, errorPage('Sign-in refused', `The EHR refused the sign-in (${code}).`));
    }
    const code = param(req, 'code', 4096);
    if (!code) return page(res, 400, errorPage('Sign-in failed', 'The EHR returned no authorization code.'));
    let token;
    try {
      token = await exchangeCode(deps.fetch, found.tokenEndpoint, { code, codeVerifier: found.codeVerifier, clientId: deps.clientId, redirectUri });
    } catch (err) {
      return upstreamFailed(res, err, 'token exchange');
    }
    const lifetimeMs = (token.expires_in ?? DEFAULT_EHR_TOKEN_LIFETIME_S) * 1000;
    // The session never outlives its token: the store drops it first.
    const ttlMs = Math.min(lifetimeMs, sessionMaxMs);
    const sessionId = randomToken();
    const secret = randomToken();
    const stored = await sessions.put(
      sessionId,
      {
        secretHash: sha256Hex(secret),
        iss: found.iss,
        accessToken: token.access_token,
        tokenExpiresAt: now() + lifetimeMs,
        ...(token.patient ? { patient: token.patient } : {}),
        ...(token.encounter ? { encounter: token.encounter } : {}),
        // Absent: show the banner (the safe reading).
        needPatientBanner: token.need_patient_banner ?? true,
        scope: token.scope ?? '',
      },
      ttlMs,
    );
    if (!stored) {
      log.warn('SMART launch: no room for another session');
      return page(res, 503, errorPage('Busy', 'Too many app sessions are open. Please try again in a minute.'));
    }
    log.info({ ehrLaunch: found.ehrLaunch, patientContext: Boolean(token.patient) }, 'SMART launch: session started');
    res
      .set('Cache-Control', 'no-store')
      .append('Set-Cookie', sessionCookie(deps.publicUrl, sessionId, secret, ttlMs / 1000))
      .redirect(302, `/app?session=${sessionId}`);
  });

  router.get('/app', async (req, res) => {
    const sessionId = param(req, 'session', 64);
    const session = sessionId && TOKEN_RE.test(sessionId) ? await sessions.get(sessionId) : undefined;
    const secret = sessionId ? readCookie(req.get('cookie'), sessionCookieName(sessionId)) : undefined;
    if (!session || !secret || !sameDigest(sha256Hex(secret), session.secretHash)) {
      return page(res, 401, errorPage('Session not found', 'This app session is unknown or has expired, or belongs to another browser.'));
    }
    page(res, 200, await renderAppPage({ session, fetch: deps.fetch, analyses: deps.analyses, log }));
  });

  return router;
}
