/**
 * The local EHR sandbox's SMART authorization server, built on oidc-provider 9, on loopback:
 *  - `/.well-known/smart-configuration` (SMART App Launch 2) and OIDC discovery;
 *  - EHR launch (`launch` -> patient/encounter context in the token response and the access token) and
 *    standalone launch (`launch/patient` -> the sandbox default patient), PKCE S256 required;
 *  - SMART Backend Services: client_credentials with private_key_jwt (RS384 / ES384) and system/ scopes;
 *  - access tokens are JWTs for the FHIR base URL, verified by the sandbox FHIR server.
 *
 * SANDBOX ONLY: nobody logs in. A fixed sandbox user (a Practitioner) is signed in and consent is granted
 * automatically (auth/interaction.ts). Never deploy this as a real authorization server.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors, type KoaContext } from 'oidc-provider';
import type { Logger } from '../log.js';
import { assertValidClient, type SandboxClient } from './auth/clients.js';
import { handleInteraction } from './auth/interaction.js';
import { LaunchStore, type GrantContext, type LaunchContext } from './auth/launch-contexts.js';
import { buildProviderConfiguration } from './auth/provider-config.js';
import { authEndpoint, buildSmartConfiguration } from './auth/smart-configuration.js';
import { listen } from './fhir/listen.js';

export type { SandboxClient } from './auth/clients.js';
export type { LaunchContext } from './auth/launch-contexts.js';

export interface AuthServerOptions {
  host?: string;
  port?: number;
  fhirBaseUrl: string;
  clients: SandboxClient[];
  log: Logger;
  /** Patient id a standalone launch with `launch/patient` gets. */
  defaultPatient?: string;
  /** The signed-in sandbox user; default `Practitioner/sandbox-practitioner`. */
  sandboxUser?: string;
  smartStyleUrl?: string;
}

export interface AuthSandbox {
  issuer: string;
  jwksUrl: string;
  /** Registers an EHR launch context and returns the opaque, one-time `launch` value. */
  createLaunch(ctx: LaunchContext): string;
  close(): Promise<void>;
}

export const DEFAULT_SANDBOX_USER = 'Practitioner/sandbox-practitioner';

export async function startAuthServer(opts: AuthServerOptions): Promise<AuthSandbox> {
  opts.clients.forEach(assertValidClient);
  const fhirBaseUrl = opts.fhirBaseUrl.replace(/\/$/, '');
  const listening = await listen(opts.host ?? '127.0.0.1', opts.port ?? 0);
  const issuer = listening.origin;
  const launches = new LaunchStore();
  const grantContexts = new Map<string, GrantContext>();

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingJwk = { ...(await exportJWK(privateKey)), kid: `sandbox-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };
  const provider = new Provider(
    issuer,
    buildProviderConfiguration({
      fhirBaseUrl,
      clients: opts.clients,
      signingJwk,
      cookieKeys: [randomBytes(32).toString('base64url')],
      grantContexts,
      invalidTarget: (d) => new errors.InvalidTarget(d),
      invalidClientAuth: (d) => new errors.InvalidClientAuth(d),
    }),
  );
  provider.use(async (ctx, next) => {
    await next();
    addLaunchContextToTokenResponse(ctx, grantContexts);
  });
  for (const event of ['grant.error', 'authorization.error', 'server_error', 'introspection.error', 'revocation.error']) {
    provider.on(event, (_ctx: unknown, err: { name?: string; error_description?: string; message?: string }) => {
      // OAuth error names and descriptions only: never tokens, assertions or parameters.
      opts.log.warn({ event, error: err?.name, description: err?.error_description ?? err?.message }, 'sandbox auth error');
    });
  }

  const registered = new Map(opts.clients.map((c) => [c.clientId, c.scope]));
  const smartConfiguration = JSON.stringify(buildSmartConfiguration(issuer));
  const oidcCallback = provider.callback();
  listening.setHandler((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (req.method === 'GET' && path === '/.well-known/smart-configuration') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'access-control-allow-origin': '*' });
      res.end(smartConfiguration);
      return;
    }
    if (req.method === 'GET' && /^\/interaction\/[A-Za-z0-9_-]+$/.test(path)) {
      handleInteraction(
        {
          provider,
          fhirBaseUrl,
          registeredScope: (id) => registered.get(id),
          launches,
          grantContexts,
          sandboxUser: opts.sandboxUser ?? DEFAULT_SANDBOX_USER,
          ...(opts.defaultPatient ? { defaultPatient: opts.defaultPatient } : {}),
          ...(opts.smartStyleUrl ? { smartStyleUrl: opts.smartStyleUrl } : {}),
          log: opts.log,
        },
        req,
        res,
      ).catch((err: unknown) => {
        opts.log.warn({ error: (err as Error)?.name }, 'sandbox auth: interaction failed');
        if (!res.headersSent) {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'invalid_request', error_description: 'interaction session not found or expired' }));
        }
      });
      return;
    }
    oidcCallback(req, res);
  });
  opts.log.info({ issuer, clients: opts.clients.length }, 'sandbox SMART authorization server listening');

  return {
    issuer,
    jwksUrl: authEndpoint(issuer, 'jwks'),
    createLaunch: (ctx) => launches.create(ctx),
    close: () => listening.close(),
  };
}

/** SMART launch context parameters in the token response (authorization_code and refresh grants). */
function addLaunchContextToTokenResponse(ctx: KoaContext, grantContexts: ReadonlyMap<string, GrantContext>): void {
  if (ctx.oidc?.route !== 'token' || ctx.status !== 200) return;
  const body = ctx.body as Record<string, unknown> | undefined;
  const grant = ctx.oidc.entities.Grant;
  if (!body?.access_token || !grant) return;
  // The access token's scope lists only the FHIR (resource) scopes; SMART apps expect the OIDC/launch
  // scopes they were granted (launch, openid, fhirUser, ...) in the response's scope too.
  const scopes = new Set([...grant.getOIDCScope().split(' '), ...String(body.scope ?? '').split(' ')].filter(Boolean));
  body.scope = [...scopes].join(' ');
  const c = grantContexts.get(grant.jti);
  if (!c) return;
  if (c.patient) body.patient = c.patient;
  if (c.encounter) body.encounter = c.encounter;
  if (c.fhirUser) body.fhirUser = c.fhirUser;
  if (c.appContext !== undefined) body.appContext = c.appContext;
  body.need_patient_banner = c.needPatientBanner;
  if (c.smartStyleUrl) body.smart_style_url = c.smartStyleUrl;
}
