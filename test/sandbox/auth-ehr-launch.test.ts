import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { Bundle, DiagnosticReport, Observation } from '@medplum/fhirtypes';
import { silentLogger } from '../../src/log.js';
import { startSmartSandbox, type SmartSandbox } from '../../src/sandbox/fhir/smart-sandbox.js';

const REDIRECT = 'http://127.0.0.1:9/callback'; // never fetched: redirects are followed by hand
const FULL_SCOPE = 'launch openid fhirUser patient/*.rs patient/DiagnosticReport.c';
const VITALS = 'category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs';
const CONSTRAINED_SCOPE = `launch patient/Observation.rs?${VITALS}`;
let confidentialKey: CryptoKey;
let sandbox: SmartSandbox;
let smart: Record<string, any>;

const obs = (id: string, patient: string): Observation => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '79893-4', display: 'Intraocular pressure' }] },
  subject: { reference: `Patient/${patient}` },
  valueQuantity: { value: 18, unit: 'mm[Hg]', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
});
const report = (patient: string): DiagnosticReport => ({
  resourceType: 'DiagnosticReport',
  status: 'preliminary',
  code: { coding: [{ system: 'http://loinc.org', code: '32451-7', display: 'Physical findings of Eye' }] },
  subject: { reference: `Patient/${patient}` },
});

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

interface AuthorizeResult {
  code?: string | null;
  error?: string | null;
  state?: string | null;
  status?: number;
}

/** Runs the authorization request through redirects and the sandbox interaction, with a cookie jar. */
async function authorize(params: Record<string, string>): Promise<AuthorizeResult> {
  const jar = new Map<string, string>();
  let url = `${smart.authorization_endpoint}?${new URLSearchParams(params)}`;
  for (let hop = 0; hop < 10; hop++) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const cookie of res.headers.getSetCookie()) {
      const pair = cookie.split(';', 1)[0] ?? '';
      const eq = pair.indexOf('=');
      const [name, value] = [pair.slice(0, eq), pair.slice(eq + 1)];
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(cookie)) jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, url);
      if (next.href.startsWith(REDIRECT)) {
        return { code: next.searchParams.get('code'), error: next.searchParams.get('error'), state: next.searchParams.get('state') };
      }
      url = next.href;
      continue;
    }
    await res.arrayBuffer();
    return { status: res.status };
  }
  throw new Error('too many redirects');
}

async function token(form: Record<string, string>) {
  const res = await fetch(smart.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** A complete launch: authorize (EHR when `launch` is given) + code exchange. */
async function launchToken(clientId: string, scope: string, launch?: string, clientAuth: Record<string, string> = {}) {
  const { verifier, challenge } = pkce();
  const state = randomBytes(16).toString('base64url');
  const auth = await authorize({
    response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, scope, state, aud: sandbox.fhir.baseUrl,
    code_challenge: challenge, code_challenge_method: 'S256', ...(launch ? { launch } : {}),
  });
  expect(auth.error ?? null).toBeNull();
  expect(auth.state).toBe(state);
  const t = await token({ grant_type: 'authorization_code', code: auth.code!, redirect_uri: REDIRECT, client_id: clientId, code_verifier: verifier, ...clientAuth });
  expect(t.status).toBe(200);
  return t.body;
}

async function fhir(accessToken: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${sandbox.fhir.baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${accessToken}`, accept: 'application/fhir+json', ...(body ? { 'content-type': 'application/fhir+json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: (await res.json()) as any };
}

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('RS384', { extractable: true });
  confidentialKey = privateKey;
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'conf-1', alg: 'RS384' };
  sandbox = await startSmartSandbox({
    log: silentLogger(),
    defaultPatient: 'p-std',
    smartStyleUrl: 'http://127.0.0.1:9/smart-style.json',
    clients: [
      { clientId: 'ehr-app', kind: 'public', redirectUris: [REDIRECT], scope: `${FULL_SCOPE} launch/patient online_access` },
      { clientId: 'viewer-app', kind: 'public', redirectUris: [REDIRECT], scope: 'launch patient/*.rs' },
      { clientId: 'confidential-app', kind: 'confidential-asymmetric', redirectUris: [REDIRECT], scope: CONSTRAINED_SCOPE, jwks: { keys: [publicJwk] } },
    ],
  });
  smart = (await (await fetch(`${sandbox.auth.issuer}/.well-known/smart-configuration`)).json()) as Record<string, any>;
  const entry = [
    { resource: { resourceType: 'Patient', id: 'p1', name: [{ family: 'One' }] } },
    { resource: { resourceType: 'Patient', id: 'p2', name: [{ family: 'Two' }] } },
    { resource: { resourceType: 'Patient', id: 'p-std', name: [{ family: 'Standalone' }] } },
    { resource: { resourceType: 'Encounter', id: 'e1', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: 'Patient/p1' } } },
    { resource: obs('o1', 'p1') },
    { resource: obs('o2', 'p2') },
    { resource: { ...obs('o3', 'p1'), category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }] } },
  ];
  await sandbox.fhir.loadBundle({ resourceType: 'Bundle', type: 'collection', entry } as Bundle);
});

afterAll(async () => {
  await sandbox?.close();
});

describe('SMART EHR launch', () => {
  it('completes with PKCE and returns the launch context, and the token reads the patient', async () => {
    const launch = sandbox.auth.createLaunch({ patient: 'p1', encounter: 'e1' });
    const t = await launchToken('ehr-app', FULL_SCOPE, launch);
    expect(t.token_type).toBe('Bearer');
    expect(t.patient).toBe('p1');
    expect(t.encounter).toBe('e1');
    expect(t.need_patient_banner).toBe(false);
    expect(t.smart_style_url).toBe('http://127.0.0.1:9/smart-style.json');
    expect(t.scope.split(' ')).toEqual(expect.arrayContaining(['launch', 'openid', 'fhirUser', 'patient/*.rs', 'patient/DiagnosticReport.c']));
    expect(decodeJwt(t.id_token).fhirUser).toBe('Practitioner/sandbox-practitioner');
    const claims = decodeJwt(t.access_token);
    expect(claims.aud).toBe(sandbox.fhir.baseUrl);
    expect(claims.patient).toBe('p1');
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(3600);

    const me = await fhir(t.access_token, 'GET', '/Patient/p1');
    expect(me.status).toBe(200);
    expect(me.json.name[0].family).toBe('One');
    expect((await fhir(t.access_token, 'GET', '/Encounter/e1')).status).toBe(200);
  });

  it('the launch id is one-time; unknown launches and a foreign aud are refused', async () => {
    const launch = sandbox.auth.createLaunch({ patient: 'p1' });
    await launchToken('ehr-app', FULL_SCOPE, launch);
    const variants: Record<string, string>[] = [{ launch }, { launch: 'no-such-launch' }, { aud: 'http://127.0.0.1:9/other-fhir' }];
    for (const extra of variants) {
      const { challenge } = pkce();
      const r = await authorize({
        response_type: 'code', client_id: 'ehr-app', redirect_uri: REDIRECT, scope: FULL_SCOPE, state: 's', aud: sandbox.fhir.baseUrl,
        code_challenge: challenge, code_challenge_method: 'S256', ...extra,
      });
      expect(r.code ?? null).toBeNull();
      expect(r.error).toBe('invalid_request');
    }
  });

  it('refuses a request without PKCE, with plain PKCE, and a code exchange with the wrong verifier or reused code', async () => {
    const base = { response_type: 'code', client_id: 'ehr-app', redirect_uri: REDIRECT, scope: FULL_SCOPE, state: 's', aud: sandbox.fhir.baseUrl };
    const missing = await authorize(base);
    expect(missing.code ?? null).toBeNull();
    expect(missing.error).toBe('invalid_request');
    const { verifier, challenge } = pkce();
    const plain = await authorize({ ...base, code_challenge: verifier, code_challenge_method: 'plain' });
    expect(plain.code ?? null).toBeNull();
    expect(plain.error).toBe('invalid_request');

    const ok = await authorize({ ...base, code_challenge: challenge, code_challenge_method: 'S256', launch: sandbox.auth.createLaunch({ patient: 'p1' }) });
    const wrong = await token({ grant_type: 'authorization_code', code: ok.code!, redirect_uri: REDIRECT, client_id: 'ehr-app', code_verifier: pkce().verifier });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toBe('invalid_grant');
    const noVerifier = await token({ grant_type: 'authorization_code', code: ok.code!, redirect_uri: REDIRECT, client_id: 'ehr-app' });
    expect(noVerifier.status).toBe(400);
  });

  it('a standalone launch with launch/patient gets the default patient and a banner', async () => {
    const t = await launchToken('ehr-app', 'launch/patient openid fhirUser patient/*.rs');
    expect(t.patient).toBe('p-std');
    expect(t.need_patient_banner).toBe(true);
    expect((await fhir(t.access_token, 'GET', '/Patient/p-std')).status).toBe(200);
  });
});

describe('scope enforcement on the FHIR server', () => {
  let p1Token: string;
  let viewerToken: string;
  beforeAll(async () => {
    p1Token = (await launchToken('ehr-app', FULL_SCOPE, sandbox.auth.createLaunch({ patient: 'p1' }))).access_token;
    // the viewer asks for DiagnosticReport.c but its registration does not cover it
    const viewer = await launchToken('viewer-app', 'launch patient/*.rs patient/DiagnosticReport.c', sandbox.auth.createLaunch({ patient: 'p1' }));
    expect(viewer.scope).not.toContain('DiagnosticReport.c');
    viewerToken = viewer.access_token;
  });

  it("refuses reads of another patient's data with 403", async () => {
    expect((await fhir(p1Token, 'GET', '/Patient/p2')).status).toBe(403);
    const other = await fhir(p1Token, 'GET', '/Observation/o2');
    expect(other.status).toBe(403);
    expect(other.json.resourceType).toBe('OperationOutcome');
    expect((await fhir(p1Token, 'GET', '/Observation/o1')).status).toBe(200);
  });

  it('limits searches to the launch patient', async () => {
    const all = await fhir(p1Token, 'GET', '/Observation');
    expect(all.status).toBe(200);
    expect(all.json.entry.map((e: any) => e.resource.id).sort()).toEqual(['o1', 'o3']);
    expect((await fhir(p1Token, 'GET', '/Observation?patient=Patient/p2')).json.total).toBe(0);
    expect((await fhir(p1Token, 'GET', '/Patient')).json.entry.map((e: any) => e.resource.id)).toEqual(['p1']);
  });

  it('needs patient/DiagnosticReport.c to create a DiagnosticReport, for the launch patient only', async () => {
    expect((await fhir(viewerToken, 'POST', '/DiagnosticReport', report('p1'))).status).toBe(403);
    expect((await fhir(p1Token, 'POST', '/DiagnosticReport', report('p2'))).status).toBe(403);
    expect((await fhir(p1Token, 'POST', '/Observation', obs('o-new', 'p1'))).status).toBe(403);
    const created = await fhir(p1Token, 'POST', '/DiagnosticReport', report('p1'));
    expect(created.status).toBe(201);
    expect((await fhir(p1Token, 'PUT', `/DiagnosticReport/${created.json.id}`, { ...created.json, status: 'final' })).status).toBe(403);
  });

  it('checks a transaction entry by entry and writes nothing when one entry is refused', async () => {
    const before = (await fhir(p1Token, 'GET', '/DiagnosticReport')).json.total as number;
    const tx: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: report('p1'), request: { method: 'POST', url: 'DiagnosticReport' } },
        { resource: obs('o-tx', 'p1'), request: { method: 'PUT', url: 'Observation/o-tx' } },
      ],
    };
    const refused = await fhir(p1Token, 'POST', '', tx);
    expect(refused.status).toBe(403);
    expect((await fhir(p1Token, 'GET', '/DiagnosticReport')).json.total).toBe(before);
    const allowed = await fhir(p1Token, 'POST', '', { ...tx, entry: [tx.entry![0]] });
    expect(allowed.status).toBe(200);
    expect((await fhir(p1Token, 'GET', '/DiagnosticReport')).json.total).toBe(before + 1);
  });
});

describe('confidential asymmetric client with a constrained v2 scope', () => {
  const clientAssertion = () => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti: randomBytes(12).toString('hex') })
      .setProtectedHeader({ alg: 'RS384', kid: 'conf-1', typ: 'JWT' })
      .setIssuer('confidential-app').setSubject('confidential-app').setAudience(smart.token_endpoint)
      .setIssuedAt(now).setExpirationTime(now + 120)
      .sign(confidentialKey);
  };

  it('authenticates the code exchange with private_key_jwt and is refused without it', async () => {
    const { verifier, challenge } = pkce();
    const auth = await authorize({
      response_type: 'code', client_id: 'confidential-app', redirect_uri: REDIRECT, scope: CONSTRAINED_SCOPE, state: 's',
      aud: sandbox.fhir.baseUrl, code_challenge: challenge, code_challenge_method: 'S256', launch: sandbox.auth.createLaunch({ patient: 'p1' }),
    });
    const unauthenticated = await token({ grant_type: 'authorization_code', code: auth.code!, redirect_uri: REDIRECT, client_id: 'confidential-app', code_verifier: verifier });
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.body.error).toBe('invalid_client');
  });

  it('limits reads and searches to resources matching the scope constraint', async () => {
    const t = await launchToken('confidential-app', CONSTRAINED_SCOPE, sandbox.auth.createLaunch({ patient: 'p1' }), {
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await clientAssertion(),
    });
    expect(t.scope).toContain(`patient/Observation.rs?${VITALS}`);
    expect((await fhir(t.access_token, 'GET', '/Observation/o3')).status).toBe(200);
    expect((await fhir(t.access_token, 'GET', '/Observation/o1')).status).toBe(403);
    const search = await fhir(t.access_token, 'GET', '/Observation');
    expect(search.json.entry.map((e: any) => e.resource.id)).toEqual(['o3']);
    expect((await fhir(t.access_token, 'GET', '/Patient/p1')).status).toBe(403);
    expect((await fhir(t.access_token, 'GET', '/?_type=Observation')).status).toBe(403);
  });
});
