/**
 * SMART App Launch (EHR launch and standalone) for the clinician-facing app:
 *   GET /launch?iss=&launch=   refuse an iss outside the FHIR allowlist before any request, discover the
 *                              SMART configuration, keep state + PKCE verifier server-side (keyed by state),
 *                              302 to the authorization endpoint;
 *   GET /launch/callback       one-time state, code exchange, token kept server-side in a session, 302 to /app;
 *   GET /app?session=[&analysis=]  the launched patient's banner, one AI draft in full (the one asked for, the
 *                              card's, else the latest) and the patient's other drafts listed;
 *   GET /app/image/<analysis>/<n>?session=&size=thumb|large, …/<n>/view
 *                              an image that draft used (this session's patient only), read again from the
 *                              analysis's own reference, shrunk, never cached; or a placeholder saying why not.
 * Tokens never leave the server: not in URLs, pages or logs. Errors are HTML pages (this is a browser flow).
 */
import { randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type { AnalysisCache } from '../src/analysis/analysis-cache.js';
import { isAppError } from '../src/errors.js';
import { DEFAULT_EHR_TOKEN_LIFETIME_S } from '../src/fhir/token-source.js';
import type { Logger } from '../src/log.js';
import { describeOrigin } from '../src/net/allowlist.js';
import type { GuardedFetch } from '../src/net/guarded-fetch.js';
import { renderAppPage, type AppPageFocus } from './app-page.js';
import { errorPage, reviewResultPage } from './pages.js';
import { codeChallengeS256, randomToken, sameDigest, sha256Hex, TOKEN_RE } from './pkce.js';
import { BrowserBinding, type BrowserRecord } from './session-cookie.js';
import { authorizeUrl, discoverSmartConfiguration, exchangeCode, refreshAccessToken, TokenRefusedError, type SmartClientAuth } from './smart-oauth.js';
import { IdTokenError, JwksCache, validateIdToken } from './id-token.js';
import { MemoryKeyedStore, type KeyedStore } from './ttl-store.js';
import type { AnalysisResult } from '../src/analysis/analyse.js';
import { analysisSubject } from '../src/analysis/analysis-cache.js';
import { writebackScopes } from '../src/writeback/profiles.js';
import type { WritebackOutcome, WritebackService } from '../src/writeback/service.js';
import type { PacsConfig } from '../src/imaging/gather.js';
import type { PixelWork } from '../src/imaging/pixel-workers.js';
import type { ViewSize } from '../src/imaging/view-image.js';
import { analysisImages, imageIndex, imageViews, placeholderSvg, showStoredImage } from './app-images.js';
import { clinicianFhir, DRAFTS_LISTED } from './app-page.js';
import { imageViewPage, imageHref } from './pages.js';

export interface PendingLaunch {
  iss: string;
  tokenEndpoint: string;
  codeVerifier: string;
  ehrLaunch: boolean;
  /** The browser that started the launch (session-cookie.ts): only it may complete the callback. */
  browserId: string;
  /** Sent when `openid` is asked: the id_token is then validated against this issuer's keys. */
  oidc?: { nonce: string; issuer?: string; jwksUri?: string };
}

export interface AppSession {
  /** The browser (session-cookie.ts) this session belongs to. */
  browserId: string;
  iss: string;
  accessToken: string;
  /** Epoch ms when the access token expires (the token source refuses it after that). */
  tokenExpiresAt: number;
  /** Where a refresh token is redeemed. */
  tokenEndpoint: string;
  /** Granted with `online_access`/`offline_access`: used when the access token has expired (server-side only). */
  refreshToken?: string;
  /** Epoch ms when this app session ends (the store drops it then). */
  endsAt: number;
  patient?: string;
  encounter?: string;
  needPatientBanner: boolean;
  scope: string;
  /** The signed-in clinician (`Practitioner/123`), from the validated id_token's fhirUser only; write-back needs it. */
  fhirUser?: string;
  /** The CSRF token of this session's review forms (compared in constant time). */
  csrf?: string;
  /** The analysis a card's smart link named (`appContext` `{"analysis":"<id>"}`), opened first if it is this patient's. */
  analysisId?: string;
}

const ANALYSIS_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The analysis id of a volmo card's `appContext` (`{"analysis":"<id>"}`); anything else names none. */
export function analysisFromAppContext(appContext: string | undefined): string | undefined {
  if (!appContext) return undefined;
  try {
    const v = JSON.parse(appContext) as unknown;
    const id = typeof v === 'object' && v !== null ? (v as { analysis?: unknown }).analysis : undefined;
    return typeof id === 'string' && ANALYSIS_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

export interface LaunchDeps {
  publicUrl: string;
  clientId: string;
  /** Token-endpoint client authentication (default `none`: a public client); `private_key_jwt` for confidential-asymmetric. */
  clientAuth?: SmartClientAuth;
  /** Requested scopes for an EHR launch (must include `launch`); a standalone launch asks `launch/patient` instead. */
  scopes: string;
  fetch: GuardedFetch;
  /** Whether a launch `iss` names a FHIR server this service trusts (the same check hook fhirServer URLs get). */
  isFhirServerAllowed: (url: string) => boolean;
  analyses: Pick<AnalysisCache, 'recentForSubject'> & Partial<Pick<AnalysisCache, 'findById'>>;
  log: Logger;
  pending?: KeyedStore<PendingLaunch>;
  sessions?: KeyedStore<AppSession>;
  browsers?: KeyedStore<BrowserRecord>;
  /** EHR origins that may frame the app (CSP frame-ancestors); none: this origin only. */
  frameAncestors?: readonly string[];
  /** How long a started launch may take to come back (default 10 min). */
  stateTtlMs?: number;
  /** Upper bound of an app session; shorter when the token expires sooner (default 1 h). */
  sessionMaxMs?: number;
  now?: () => number;
  /** Approve & file / Discard (src/writeback); absent: the app is read-only. */
  writeback?: WritebackService;
  /** Where the review page's images are read again (GET /app/image/…): the configured PACS, the pixel workers. */
  images?: { pacs?: PacsConfig; pixels?: PixelWork };
}


/**
 * Sends one of the app's pages. CSP: nothing loads but what carries this response's nonce (the page's own
 * `<style>`, and any script it may get: scripts by nonce only, no inline handlers), forms post to this origin,
 * and only the configured EHR origins may frame the app (none configured: this origin only).
 */
function sendPage(res: Response, status: number, html: string, frameAncestors: readonly string[]): void {
  const nonce = randomBytes(16).toString('base64');
  res
    .status(status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': [
        "default-src 'none'",
        `script-src 'nonce-${nonce}'`,
        `style-src 'nonce-${nonce}'`,
        "img-src 'self' data:",
        "form-action 'self'",
        "base-uri 'none'",
        `frame-ancestors ${frameAncestors.length ? frameAncestors.join(' ') : "'self'"}`,
      ].join('; '),
    })
    // The layout's one <style> and one <script> (pages.ts) carry the nonce; escaped content holds no literal tag.
    .send(html.replace('<style>', `<style nonce="${nonce}">`).replace('<script>', `<script nonce="${nonce}">`));
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
  const clientAuth: SmartClientAuth = deps.clientAuth ?? { kind: 'none' };
  const browsers = new BrowserBinding(deps.browsers ?? new MemoryKeyedStore<BrowserRecord>({ maxEntries: 10_000, now }), {
    publicUrl: deps.publicUrl,
    ttlMs: sessionMaxMs + stateTtlMs,
    now,
  });
  const log = deps.log;
  const jwks = new JwksCache(deps.fetch, now);
  const frameAncestors = deps.frameAncestors ?? [];
  const page = (res: Response, status: number, html: string) => sendPage(res, status, html, frameAncestors);
  const router = express.Router();

  const upstreamFailed = (res: Response, err: unknown, step: string) => {
    if (err instanceof TokenRefusedError) {
      // The EHR answered and said no: its OAuth error code only (its description is free text that could hold PHI).
      log.warn({ step, status: err.status, error: err.oauthError ?? 'none' }, 'SMART launch refused by the EHR');
      return page(res, 400, errorPage('The EHR refused the sign-in', `The EHR refused the sign-in (${step}: ${err.oauthError ?? `HTTP ${err.status}`}). Open the app again from the patient's chart; if it keeps failing, tell your EHR support team.`));
    }
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
    const asked = launch !== undefined ? deps.scopes : deps.scopes.split(' ').map((s) => (s === 'launch' ? 'launch/patient' : s)).join(' ');
    // The write scopes of this EHR's write-back profile (none when it is off), each asked once.
    const scope = [...new Set([...asked.split(' '), ...writebackScopes(deps.writeback?.profileFor(iss) ?? 'off')])].join(' ');
    const oidc = scope.split(' ').includes('openid')
      ? { nonce: randomToken(), ...(smart.issuer ? { issuer: smart.issuer } : {}), ...(smart.jwks_uri ? { jwksUri: smart.jwks_uri } : {}) }
      : undefined;
    const browser = await browsers.ensure(req.get('cookie'));
    const state = randomToken();
    const codeVerifier = randomToken();
    const record: PendingLaunch = { iss, tokenEndpoint: smart.token_endpoint, codeVerifier, ehrLaunch: launch !== undefined, browserId: browser?.browserId ?? '', ...(oidc ? { oidc } : {}) };
    if (!browser || !(await pending.put(state, record, stateTtlMs))) {
      log.warn('SMART launch refused: too many launches in progress');
      return page(res, 503, errorPage('Busy', 'Too many sign-ins are in progress. Please try again in a minute.'));
    }
    const location = authorizeUrl(smart.authorization_endpoint, {
      clientId: deps.clientId, redirectUri, scope, state, iss, codeChallenge: codeChallengeS256(codeVerifier), ...(launch !== undefined ? { launch } : {}), ...(oidc ? { nonce: oidc.nonce } : {}),
    });
    log.info({ issOrigin: describeOrigin(iss), ehrLaunch: launch !== undefined }, 'SMART launch: redirecting to authorize');
    res.set('Cache-Control', 'no-store');
    if (browser.setCookie) res.append('Set-Cookie', browser.setCookie);
    res.redirect(302, location);
  });

  router.get('/launch/callback', async (req, res) => {
    const state = param(req, 'state', 64);
    const found = state && TOKEN_RE.test(state) ? await pending.take(state) : undefined;
    if (!found) return page(res, 400, errorPage('Sign-in expired', 'This sign-in is unknown, was already used, or has expired.'));
    // SMART 2.2: state is bound to the browser that started the launch (a forged or foreign callback is refused).
    const browserId = await browsers.verify(req.get('cookie'));
    if (!browserId || browserId !== found.browserId) {
      log.warn('SMART launch refused: callback from a browser other than the one that started the launch');
      return page(res, 400, errorPage('Sign-in refused', 'This sign-in was started in another browser (or this browser blocked the app\'s cookie), so it cannot be completed here.'));
    }
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
      token = await exchangeCode(deps.fetch, found.tokenEndpoint, { code, codeVerifier: found.codeVerifier, clientId: deps.clientId, redirectUri, auth: clientAuth });
    } catch (err) {
      return upstreamFailed(res, err, 'token exchange');
    }
    // The clinician's identity: the fhirUser claim of an id_token whose signature, iss, aud, exp and nonce hold.
    let fhirUser: string | undefined;
    if (token.id_token && found.oidc?.issuer && found.oidc.jwksUri && deps.fetch.allows(found.oidc.jwksUri)) {
      try {
        fhirUser = (await validateIdToken(jwks, token.id_token, { issuer: found.oidc.issuer, jwksUri: found.oidc.jwksUri, clientId: deps.clientId, nonce: found.oidc.nonce, now: now() })).fhirUser;
      } catch (err) {
        if (!(err instanceof IdTokenError)) return upstreamFailed(res, err, 'identity token keys');
        log.warn({ reason: err.why }, 'SMART launch refused: id_token did not validate');
        return page(res, 400, errorPage('Sign-in refused', "The EHR's identity token for this sign-in did not verify, so the app cannot tell who you are. Open the app again from the chart; if it keeps failing, tell your EHR support team."));
      }
    } else if (token.id_token) {
      log.warn({ issuer: Boolean(found.oidc?.issuer), jwksUri: Boolean(found.oidc?.jwksUri) }, 'SMART launch: id_token not verifiable (no issuer/jwks_uri in discovery, or jwks_uri not on the outbound allowlist); the app is read-only');
    }
    const lifetimeMs = (token.expires_in ?? DEFAULT_EHR_TOKEN_LIFETIME_S) * 1000;
    // The session outlives its access token (a refresh token renews it; without one the app asks to re-open it from the chart).
    const ttlMs = sessionMaxMs;
    const sessionId = randomToken();
    const stored = await sessions.put(
      sessionId,
      {
        browserId,
        iss: found.iss,
        accessToken: token.access_token,
        tokenExpiresAt: now() + lifetimeMs,
        tokenEndpoint: found.tokenEndpoint,
        ...(token.refresh_token ? { refreshToken: token.refresh_token } : {}),
        endsAt: now() + ttlMs,
        ...(token.patient ? { patient: token.patient } : {}),
        ...(token.encounter ? { encounter: token.encounter } : {}),
        // Absent: show the banner (the safe reading).
        needPatientBanner: token.need_patient_banner ?? true,
        scope: token.scope ?? '',
        ...(fhirUser ? { fhirUser } : {}),
        ...(analysisFromAppContext(token.appContext) ? { analysisId: analysisFromAppContext(token.appContext)! } : {}),
        csrf: randomToken(),
      },
      ttlMs,
    );
    if (!stored) {
      log.warn('SMART launch: no room for another session');
      return page(res, 503, errorPage('Busy', 'Too many app sessions are open. Please try again in a minute.'));
    }
    // A new secret at each sign-in, under the same cookie name (the browser's other sessions keep working).
    const setCookie = await browsers.rotate(browserId);
    log.info({ ehrLaunch: found.ehrLaunch, patientContext: Boolean(token.patient) }, 'SMART launch: session started');
    res.set('Cache-Control', 'no-store');
    if (setCookie) res.append('Set-Cookie', setCookie);
    res.redirect(302, `/app?session=${sessionId}`);
  });

  /**
   * The session with an access token good for the next FHIR call: as is, renewed with its refresh token when it
   * has expired (or expires within 30 s), or `expired` when it cannot be renewed (re-open from the chart).
   */
  const withFreshToken = async (sessionId: string, session: AppSession): Promise<AppSession | 'expired' | 'unreachable'> => {
    if (session.tokenExpiresAt - 30_000 > now()) return session;
    if (!session.refreshToken) return 'expired';
    let token;
    try {
      token = await refreshAccessToken(deps.fetch, session.tokenEndpoint, { refreshToken: session.refreshToken, clientId: deps.clientId, auth: clientAuth });
    } catch (err) {
      // Another request of this session may have just used a rotating refresh token: take what it stored.
      const latest = await sessions.get(sessionId);
      if (latest && latest.browserId === session.browserId && latest.tokenExpiresAt - 30_000 > now()) return latest;
      log.warn({ code: isAppError(err) ? err.code : 'internal', error: err instanceof TokenRefusedError ? (err.oauthError ?? err.status) : undefined }, 'SMART app: token refresh failed');
      return err instanceof TokenRefusedError ? 'expired' : 'unreachable';
    }
    const renewed: AppSession = {
      ...session,
      accessToken: token.access_token,
      tokenExpiresAt: now() + (token.expires_in ?? DEFAULT_EHR_TOKEN_LIFETIME_S) * 1000,
      // A server that rotates refresh tokens sends a new one; otherwise the old one stays valid.
      refreshToken: token.refresh_token ?? session.refreshToken,
      ...(token.scope ? { scope: token.scope } : {}),
    };
    if (!(await sessions.put(sessionId, renewed, Math.max(1, session.endsAt - now())))) return 'unreachable';
    log.info('SMART app: access token refreshed');
    return renewed;
  };
  const tokenProblem = (res: Response, problem: 'expired' | 'unreachable') =>
    problem === 'expired'
      ? page(res, 401, errorPage('Please re-open VOLMO from the chart', "Your EHR sign-in for this app has expired and cannot be renewed here. Nothing was filed. Re-open VOLMO from the patient's chart to continue."))
      : page(res, 502, errorPage('The EHR could not be reached', 'The app could not renew its EHR sign-in. Nothing was filed. Try again in a minute.'));

  const openSession = async (sessionId: string | undefined, cookieHeader: string | undefined): Promise<AppSession | undefined> => {
    const session = sessionId && TOKEN_RE.test(sessionId) ? await sessions.get(sessionId) : undefined;
    if (!session) return undefined;
    const browserId = await browsers.verify(cookieHeader);
    return browserId !== undefined && browserId === session.browserId ? session : undefined;
  };

  /** A retained analysis of this session's patient (from this EHR); 'foreign' when it is another patient's. */
  const patientAnalysis = async (session: AppSession, id: string): Promise<{ id: string; startedAt: number; result: AnalysisResult } | 'foreign' | undefined> => {
    if (!session.patient || !ANALYSIS_ID.test(id)) return undefined;
    const subject = analysisSubject(session.iss, session.patient);
    if (!deps.analyses.findById) return (await deps.analyses.recentForSubject(subject, DRAFTS_LISTED)).find((a) => a.id === id);
    const found = await deps.analyses.findById(id);
    if (!found) return undefined;
    return found.subject === subject ? found : 'foreign';
  };

  router.get('/app', async (req, res) => {
    const sessionId = param(req, 'session', 64);
    const session = await openSession(sessionId, req.get('cookie'));
    if (!session) {
      return page(res, 401, errorPage('Session not found', 'This app session is unknown or has expired, or belongs to another browser.'));
    }
    // A draft picked from the page's list (`analysis`), else the one a card's link named: shown first, and only
    // when it is this launch's patient's (from this EHR).
    const asked = req.query.analysis === undefined ? undefined : param(req, 'analysis', 128);
    if (req.query.analysis !== undefined && (!asked || !ANALYSIS_ID.test(asked))) {
      return page(res, 400, errorPage('Draft not found', 'This link does not name a draft. Open the draft from the list on the patient\'s page.'));
    }
    const wanted = asked ?? session.analysisId;
    let focus: AppPageFocus | undefined;
    if (wanted) {
      const named = await patientAnalysis(session, wanted);
      if (named === 'foreign') {
        log.warn({ fromCard: !asked }, 'SMART app: the analysis asked for belongs to another patient; refused');
        return page(res, 403, errorPage('This draft belongs to another patient', asked ? 'This link names an AI draft of a different patient than the one open in the EHR, so it is not shown.' : "The card you opened names an AI draft of a different patient than the one open in the EHR, so it is not shown. Open the app again from this patient's chart."));
      }
      focus = named ? { analysis: named, fromCard: wanted === session.analysisId } : { missing: true, fromCard: !asked };
    }
    const fresh = await withFreshToken(sessionId!, session);
    if (typeof fresh === 'string') return tokenProblem(res, fresh);
    page(res, 200, await renderAppPage({ session: fresh, fetch: deps.fetch, analyses: deps.analyses, log, ...(focus ? { focus } : {}), sessionId: sessionId!, ...(deps.writeback ? { writeback: deps.writeback } : {}) }));
  });

  // The review page's images: read again (only from the references the analysis keeps), shrunk, never cached.
  let imagesActive = 0;
  const imagesWaiting: (() => void)[] = [];
  /** At most 4 images read and shrunk at once per process (a page asks for all its thumbnails together); 64 more wait. */
  const limited = async <T>(fn: () => Promise<T>): Promise<T | 'busy'> => {
    if (imagesActive >= 4) {
      if (imagesWaiting.length >= 64) return 'busy';
      await new Promise<void>((resolve) => imagesWaiting.push(resolve)); // the finishing one hands its place over
    } else imagesActive++;
    try {
      return await fn();
    } finally {
      const next = imagesWaiting.shift();
      if (next) next();
      else imagesActive--;
    }
  };
  const sendImage = (res: Response, status: number, body: Buffer | string, type: string) =>
    res
      .status(status)
      .set({
        'Content-Type': type,
        // PHI: never stored by the browser or anything between (no disk cache), never sniffed, never framed or embedded elsewhere.
        'Cache-Control': 'private, no-store',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Cross-Origin-Resource-Policy': 'same-origin',
        'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; sandbox",
      })
      .send(body);
  const placeholder = (res: Response, status: number, words: string, size: ViewSize) => sendImage(res, status, placeholderSvg(words, size), 'image/svg+xml; charset=utf-8');

  const imageRequest = async (req: Request, res: Response, asPage: boolean) => {
    const sessionId = param(req, 'session', 64);
    const rawSize = req.query.size === undefined ? 'thumb' : req.query.size;
    const size: ViewSize | undefined = rawSize === 'thumb' || rawSize === 'large' ? rawSize : undefined;
    const refuse = (status: number, title: string, words: string) => (asPage ? page(res, status, errorPage(title, words)) : placeholder(res, status, words, size ?? 'thumb'));
    const session = await openSession(sessionId, req.get('cookie'));
    if (!session) return refuse(401, 'Session not found', 'This app session is unknown or has expired, or belongs to another browser.');
    const id = typeof req.params.analysis === 'string' ? req.params.analysis : '';
    const n = imageIndex(typeof req.params.n === 'string' ? req.params.n : undefined);
    if (!ANALYSIS_ID.test(id) || n === undefined || (!asPage && !size)) return refuse(400, 'Image not found', 'This link does not name an image of a draft.');
    const found = await patientAnalysis(session, id);
    if (found === 'foreign') {
      log.warn('SMART app: an image of another patient\'s analysis was asked for; refused');
      return refuse(403, 'This image belongs to another patient', "This image is from an AI draft of a different patient than the one open in the EHR, so it is not shown.");
    }
    const img = found ? analysisImages(found.result.evidence)[n] : undefined;
    if (!found || !img) return refuse(404, 'Image not found', 'This draft has no such image (or the draft is no longer kept).');
    if (asPage) {
      const view = imageViews(found.result.evidence)[n]!;
      return page(res, 200, imageViewPage({ image: view, src: imageHref(sessionId!, id, n, 'large'), back: `/app?session=${encodeURIComponent(sessionId!)}&analysis=${encodeURIComponent(id)}` }));
    }
    const fresh = await withFreshToken(sessionId!, session);
    if (typeof fresh === 'string') return placeholder(res, fresh === 'expired' ? 401 : 502, fresh === 'expired' ? 'Your EHR sign-in has expired: re-open VOLMO from the chart to see the images.' : 'The EHR could not be reached.', size!);
    const fhir = clinicianFhir(fresh, deps.fetch, log);
    const shown = await limited(() =>
      showStoredImage(img, size!, { fetch: deps.fetch, fhir, signal: AbortSignal.timeout(30_000), ...(deps.images?.pacs ? { pacs: deps.images.pacs } : {}), ...(deps.images?.pixels ? { pixels: deps.images.pixels } : {}) }),
    );
    if (shown === 'busy') return placeholder(res, 503, 'Too many images are being prepared. Reload the page in a moment.', size!);
    if (shown.kind === 'jpeg') return sendImage(res, 200, shown.body, 'image/jpeg');
    log.warn({ status: shown.status, via: img.provenance.via }, 'SMART app: an image of the draft could not be shown');
    placeholder(res, shown.status, shown.words, size!);
  };
  router.get('/app/image/:analysis/:n', (req, res) => imageRequest(req, res, false));
  router.get('/app/image/:analysis/:n/view', (req, res) => imageRequest(req, res, true));

  router.post('/app/review', express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 10 }), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const field = (name: string, max: number) => (typeof body[name] === 'string' && (body[name] as string).length <= max ? (body[name] as string) : undefined);
    const sessionId = field('session', 64);
    const session = await openSession(sessionId, req.get('cookie'));
    if (!session) return page(res, 401, errorPage('Session not found', 'This app session is unknown or has expired, or belongs to another browser.'));
    const csrf = field('csrf', 64);
    if (!csrf || !session.csrf || !sameDigest(sha256Hex(csrf), sha256Hex(session.csrf))) {
      log.warn('SMART app: review refused (CSRF token missing or wrong)');
      return page(res, 403, errorPage('Request refused', 'This form did not come from your app session. Reload the draft and try again.'));
    }
    const back = `/app?session=${sessionId}`;
    const action = field('action', 16);
    const analysisId = field('analysis', 128);
    const conclusion = field('conclusion', 4000)?.trim();
    const assessmentPlan = field('assessmentPlan', 8000)?.trim();
    if ((action !== 'approve' && action !== 'discard') || !analysisId || (action === 'approve' && !conclusion)) {
      return page(res, 400, reviewResultPage('refused', 'Nothing was filed', 'The review form was incomplete (an approval needs a conclusion).', back));
    }
    if (!deps.writeback || deps.writeback.profileFor(session.iss) === 'off') {
      return page(res, 409, reviewResultPage('refused', 'Nothing was filed', 'Write-back is not configured for this EHR.', back));
    }
    if (!session.patient) return page(res, 400, reviewResultPage('refused', 'Nothing was filed', 'This launch has no patient.', back));
    const fresh = await withFreshToken(sessionId!, session);
    if (typeof fresh === 'string') return tokenProblem(res, fresh);
    if (!session.fhirUser) {
      return page(res, 409, reviewResultPage('refused', 'Nothing was filed', 'The EHR did not say who you are (no fhirUser in the sign-in), so nothing can be filed in your name. Open the app again from the chart.', back));
    }
    // Only a draft of this session's patient, from this EHR, can be reviewed here.
    const subject = analysisSubject(session.iss, session.patient);
    let found: { result: unknown } | undefined = (await deps.analyses.recentForSubject(subject, 20)).find((a) => a.id === analysisId);
    if (!found && analysisId === session.analysisId) {
      const named = await deps.analyses.findById?.(analysisId);
      if (named?.subject === subject) found = named;
    }
    if (!found) return page(res, 404, reviewResultPage('refused', 'Nothing was filed', "This draft is not one of this patient's current drafts.", back));
    const fhir = clinicianFhir(fresh, deps.fetch, log);
    const outcome = await deps.writeback.run(action, {
      fhir, analysisId, result: found.result as AnalysisResult, clinician: session.fhirUser,
      ...(conclusion ? { conclusion } : {}), ...(assessmentPlan ? { assessmentPlan } : {}), ...(session.encounter ? { encounter: `Encounter/${session.encounter}` } : {}),
    });
    const [status, html] = reviewAnswer(outcome, action, back);
    page(res, status, html);
  });

  return router;
}

/** The page for a review's outcome: what happened in the EHR, in plain words (the EHR's reason when it refused). */
function reviewAnswer(o: WritebackOutcome, action: 'approve' | 'discard', back: string): [number, string] {
  const did = action === 'approve' ? 'Approved and filed' : 'Discarded';
  switch (o.kind) {
    case 'written':
      return [200, reviewResultPage('done', did, action === 'approve' ? `Filed in the EHR${o.resources.length ? ` (${o.resources.join(', ')})` : ''}.` : o.resources.length ? 'The draft in the EHR is marked entered in error.' : 'Nothing was written to the EHR.', back)];
    case 'already':
      return [200, reviewResultPage('done', 'Already done', `This draft was already ${action === 'approve' ? 'filed' : 'discarded'}; nothing was changed.`, back)];
    case 'conflict':
      return [409, reviewResultPage('refused', 'Nothing was changed', `This draft was already ${o.done === 'approve' ? 'filed' : 'discarded'}; nothing was changed.`, back)];
    case 'refused':
      return [422, reviewResultPage('refused', 'The EHR refused the write', 'Nothing was marked filed.', back, o.reason ?? (o.status ? `HTTP ${o.status}` : undefined))];
    case 'in-progress':
      return [409, reviewResultPage('refused', 'Already in progress', 'This draft is being filed right now; reload the draft in a minute.', back)];
    case 'failed':
      return [502, reviewResultPage('refused', 'The EHR could not be reached', 'Nothing was marked filed. Try again: a repeated attempt never files twice.', back)];
    default:
      return [409, reviewResultPage('refused', 'Nothing was filed', 'Write-back is not configured for this EHR.', back)];
  }
}
