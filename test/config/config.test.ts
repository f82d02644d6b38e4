import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envName, loadConfig } from '../../src/config.js';
import { loadSandboxSettings } from '../../src/sandbox/settings.js';

function errorOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected loadConfig to throw');
}

const PRODUCTION = {
  VOLMO_PROFILE: 'production',
  VOLMO_PUBLIC_URL: 'https://cds.example.org/',
  VOLMO_CDS_CLIENTS: JSON.stringify([{ iss: 'https://ehr.example.org/fhir', jku: ['https://ehr.example.org/jwks'], fhirServers: ['https://ehr.example.org/fhir'] }]),
  VOLMO_FHIR_ALLOWLIST: 'https://ehr.example.org/fhir',
  VOLMO_MODEL_DIR: '/models/volmo-2b',
  VOLMO_SERVICE_KEY_FILE: '/etc/volmo/service-key.pem',
  VOLMO_OPERATOR_TOKEN: 'x'.repeat(40),
  VOLMO_DATA_KEY_FILE: '/etc/volmo/data.key',
  VOLMO_DATABASE_URL: 'postgres://volmo@db.example.org/volmo',
};

describe('configuration', () => {
  it('has embedded defaults for the sandbox profile', () => {
    const c = loadConfig({});
    expect(c.profile).toBe('sandbox');
    expect(loadSandboxSettings({}, c.profile).sandbox).toBe(true);
    expect(c).not.toHaveProperty('sandboxFhirPort');
    expect(c.host).toBe('127.0.0.1');
    expect(c.publicUrl).toBe('http://127.0.0.1:8080');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('maps keys to environment names', () => {
    expect(envName('publicUrl')).toBe('VOLMO_PUBLIC_URL');
    expect(envName('cdsRequireJwt')).toBe('VOLMO_CDS_REQUIRE_JWT');
  });

  it('reports every bad value at once, each by its variable name', () => {
    const msg = errorOf({ VOLMO_PORT: 'eighty', VOLMO_LOG_LEVEL: 'loud', VOLMO_FHIR_ALLOWLIST: 'ftp://x.example', VOLMO_CDS_CLIENTS: '[oops', VOLMO_MAX_TILES: '0' });
    expect(msg).toMatch(/VOLMO_PORT/);
    expect(msg).toMatch(/VOLMO_LOG_LEVEL/);
    expect(msg).toMatch(/VOLMO_FHIR_ALLOWLIST.*http\(s\)/);
    expect(msg).toMatch(/VOLMO_CDS_CLIENTS: must be a JSON array/);
    expect(msg).toMatch(/VOLMO_MAX_TILES/);
  });

  it('flags unknown VOLMO_ variables as probable typos', () => {
    expect(errorOf({ VOLMO_PORTT: '1' })).toMatch(/VOLMO_PORTT: unknown setting/);
  });

  it('parses task lists and PACS credentials, refusing unknown values', () => {
    const c = loadConfig({ VOLMO_TASKS: 'screening, describe', VOLMO_PACS_AUTH: 'basic:pacs:s3:cret' });
    expect(c.tasks).toEqual({ screening: true, drStaging: false, macularHoleStaging: false, description: true, assessPlan: false });
    expect(c.pacsAuth).toEqual({ kind: 'basic', username: 'pacs', password: 's3:cret' });
    const msg = errorOf({ VOLMO_TASKS: 'screening,telepathy', VOLMO_PACS_AUTH: 'token' });
    expect(msg).toMatch(/VOLMO_TASKS/);
    expect(msg).toMatch(/VOLMO_PACS_AUTH: must be basic/);
    expect(msg).not.toContain('s3:cret');
  });

  it('SMART client authentication: none by default, private_key_jwt with the service key or a dedicated key file', () => {
    expect(loadConfig({}).smartClientAuth).toBe('none');
    expect(loadConfig({ VOLMO_SMART_CLIENT_AUTH: 'private_key_jwt', VOLMO_SMART_CLIENT_KEY_FILE: '/etc/volmo/smart.pem' }).smartClientKeyFile).toBe('/etc/volmo/smart.pem');
    expect(errorOf({ VOLMO_SMART_CLIENT_AUTH: 'client_secret_basic' })).toMatch(/VOLMO_SMART_CLIENT_AUTH/);
    expect(errorOf({ VOLMO_SMART_CLIENT_KEY_FILE: '/etc/volmo/smart.pem' })).toMatch(/VOLMO_SMART_CLIENT_KEY_FILE: is only used with VOLMO_SMART_CLIENT_AUTH=private_key_jwt/);
  });

  it('refuses an unsafe production profile', () => {
    const msg = errorOf({ VOLMO_PROFILE: 'production', VOLMO_SANDBOX: 'true', VOLMO_PUBLIC_URL: 'http://cds.example.org', VOLMO_CDS_REQUIRE_JWT: 'false' });
    for (const k of ['VOLMO_SANDBOX', 'VOLMO_PUBLIC_URL', 'VOLMO_CDS_REQUIRE_JWT', 'VOLMO_CDS_CLIENTS', 'VOLMO_FHIR_ALLOWLIST', 'VOLMO_MODEL_DIR', 'VOLMO_SERVICE_KEY_FILE', 'VOLMO_OPERATOR_TOKEN']) expect(msg).toContain(k);
  });

  it('refuses a production CDS client bound to no FHIR server', () => {
    const msg = errorOf({
      ...PRODUCTION,
      VOLMO_CDS_CLIENTS: JSON.stringify([{ iss: 'https://ehr.example.org/fhir', jku: ['https://ehr.example.org/jwks'], fhirServers: ['https://ehr.example.org/fhir'] }, { iss: 'https://other.example.org', jku: ['https://other.example.org/jwks'] }]),
    });
    expect(msg).toMatch(/VOLMO_CDS_CLIENTS \(cdsClients\.1\.fhirServers\): production binds every CDS client to its FHIR servers \(https:\/\/other\.example\.org has none\)/);
    expect(msg).not.toMatch(/cdsClients\.0/);
  });

  it('reads body limits: size in bytes, JSON depth and value count bounded', () => {
    const c = loadConfig({ VOLMO_REQUEST_BODY_LIMIT: '512kb' });
    expect(c.requestBodyLimit).toBe(512 * 1024);
    expect(loadConfig({}).requestBodyLimit).toBe(5 * 1024 * 1024);
    expect(errorOf({ VOLMO_REQUEST_JSON_MAX_DEPTH: '2' })).toMatch(/VOLMO_REQUEST_JSON_MAX_DEPTH/);
  });

  it('background draft write-back: FHIR bases on the allowlist only, on a durable store', () => {
    const ok = loadConfig({ VOLMO_FHIR_ALLOWLIST: 'https://ehr.example.org/fhir', VOLMO_WRITEBACK_BACKGROUND: 'https://ehr.example.org/fhir/' });
    expect(ok.writebackBackground).toEqual(['https://ehr.example.org/fhir/']);
    expect(loadConfig({}).writebackBackground).toBeUndefined();
    expect(errorOf({ VOLMO_FHIR_ALLOWLIST: 'https://ehr.example.org/fhir', VOLMO_WRITEBACK_BACKGROUND: 'https://other.example.org/fhir' })).toMatch(/VOLMO_WRITEBACK_BACKGROUND: https:\/\/other\.example\.org\/fhir must be on VOLMO_FHIR_ALLOWLIST/);
    expect(errorOf({ VOLMO_WRITEBACK_BACKGROUND: 'not a url' })).toMatch(/VOLMO_WRITEBACK_BACKGROUND/);
    expect(errorOf({ VOLMO_FHIR_ALLOWLIST: 'https://ehr.example.org/fhir', VOLMO_WRITEBACK_BACKGROUND: 'https://ehr.example.org/fhir', VOLMO_DATABASE_URL: 'memory:' })).toMatch(/VOLMO_WRITEBACK_BACKGROUND: background write-back runs as jobs: it needs a durable store/);
  });

  it('accepts a complete production profile', () => {
    const c = loadConfig(PRODUCTION);
    expect(loadSandboxSettings(PRODUCTION, c.profile).sandbox).toBe(false);
    expect(c.host).toBe('0.0.0.0');
    expect(c.publicUrl).toBe('https://cds.example.org');
    expect(c.cdsClients[0]?.jku).toEqual(['https://ehr.example.org/jwks']);
  });

  it('store: sqlite in the state dir by default, postgres or memory when named; production needs the data key', () => {
    expect(loadConfig({}).databaseUrl).toBeUndefined(); // the store's default (sqlite:var/volmo.db), or the sandbox's state dir
    expect(loadConfig({ VOLMO_DATABASE_URL: 'memory:' }).databaseUrl).toBe('memory:');
    expect(loadConfig(PRODUCTION).databaseUrl).toBe('postgres://volmo@db.example.org/volmo');
    expect(loadConfig({}).analysisRetentionDays).toBe(30);
    expect(errorOf({ VOLMO_DATABASE_URL: 'mysql://x' })).toMatch(/VOLMO_DATABASE_URL: must be sqlite:<path>, postgres:\/\/… or memory:/);
    expect(errorOf({ VOLMO_ANALYSIS_RETENTION_DAYS: '0' })).toMatch(/VOLMO_ANALYSIS_RETENTION_DAYS/);
    const { VOLMO_DATA_KEY_FILE: _, ...withoutKey } = PRODUCTION;
    expect(errorOf(withoutKey)).toMatch(/VOLMO_DATA_KEY_FILE: production needs the data key/);
  });

  it('reads an optional JSON file, with the environment taking precedence', () => {
    const dir = mkdtempSync(join(tmpdir(), 'volmo-cfg-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ port: 9000, logLevel: 'debug' }));
    const c = loadConfig({ VOLMO_CONFIG_FILE: file, VOLMO_PORT: '9100' });
    expect(c.port).toBe(9100);
    expect(c.logLevel).toBe('debug');
    writeFileSync(file, JSON.stringify({ prot: 1 }));
    expect(errorOf({ VOLMO_CONFIG_FILE: file })).toMatch(/unknown keys: prot/);
    expect(errorOf({ VOLMO_CONFIG_FILE: join(dir, 'missing.json') })).toMatch(/cannot read/);
  });

  it('keeps the sandbox settings out of the service configuration, under their old names', () => {
    const env = { VOLMO_SANDBOX_FHIR_PORT: '0', VOLMO_SANDBOX_PACS: 'none', VOLMO_SANDBOX_STATE_DIR: '/tmp/sb' };
    const c = loadConfig(env);
    expect(Object.keys(c).filter((k) => k.startsWith('sandbox'))).toEqual([]);
    const s = loadSandboxSettings(env, c.profile);
    expect(s).toMatchObject({ sandbox: true, sandboxFhirPort: 0, sandboxPacs: 'none', sandboxStateDir: '/tmp/sb', sandboxAuthPort: 8104 });
    expect(() => loadSandboxSettings({ VOLMO_SANDBOX_FHIR_PROT: '1' })).toThrow(/VOLMO_SANDBOX_FHIR_PROT: unknown setting/);
    expect(() => loadSandboxSettings({ VOLMO_SANDBOX: 'true' }, 'production')).toThrow(/cannot run in the production profile/);
    expect(loadSandboxSettings({ VOLMO_SANDBOX: 'false' }).sandbox).toBe(false);
  });
});
