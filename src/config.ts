/**
 * Configuration: read once at start-up from environment variables (VOLMO_*) and an optional JSON file
 * (VOLMO_CONFIG_FILE, same keys in camelCase; environment wins), validated as a whole so that every bad
 * value is reported at once, then frozen. This is the only module that reads process.env (its default
 * argument); the sandbox's own settings (VOLMO_SANDBOX*, src/sandbox/settings.ts) are read through
 * `readSettings` here, and are no part of the service's `Config`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AppError } from './errors.js';
import { parseSiteThresholds, type SiteThresholds } from './findings/site-thresholds.js';
import { parsePlanRules } from './findings/management/rules-file.js';
import { defaultPlanRuleTable, type PlanRuleTable } from './findings/management/rules.js';
import { parseProfileMap, WRITEBACK_PROFILES, type WritebackProfileName } from './writeback/profiles.js';

export const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])]).transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
export const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const httpUrl = z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL');
const urlList = z
  .union([z.array(z.string()), z.string()])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
  .pipe(z.array(httpUrl));

/** A CDS client (EHR) allowed to call this service: its `iss`, and where its signing keys may come from. */
const cdsClient = z.object({
  iss: z.string().min(1),
  /** JWK Set URLs this issuer may name in `jku`; a `jku` outside this list is refused before any fetch. */
  jku: z.array(httpUrl).default([]),
  /** Keys exchanged out of band (used when the JWT has no `jku`). */
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
  tenant: z.string().optional(),
  /** The FHIR base URLs this EHR may name as a hook's fhirServer (recommended: its own only). */
  fhirServers: z.array(httpUrl).optional(),
});

const schema = z
  .object({
    profile: z.enum(['sandbox', 'production']).default('sandbox'),
    host: z.string().min(1).optional(),
    port: port.default(8080),
    /** The exact public base URL EHRs call (used for JWT `aud` checks and links). */
    publicUrl: httpUrl.optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    shutdownGraceMs: positiveInt.default(10_000),
    /** Largest request body, e.g. `5mb` or `512kb` (read only after the caller is authenticated). */
    requestBodyLimit: z
      .string()
      .regex(/^\d+(kb|mb)$/i, 'like 5mb or 512kb')
      .default('5mb')
      .transform((v) => Number.parseInt(v, 10) * (/mb$/i.test(v) ? 1024 * 1024 : 1024)),
    /** Deepest nesting of objects/arrays in a JSON request body (a FHIR prefetch Bundle needs ~15). */
    requestJsonMaxDepth: z.coerce.number().int().min(8).max(1000).default(64),
    /** Most values in one JSON request body (checked before parsing). */
    requestJsonMaxNodes: z.coerce.number().int().min(1000).max(10_000_000).default(250_000),
    corsOrigins: z.union([z.array(z.string()), z.string()]).transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean)).default([]),

    cdsRequireJwt: bool.default(true),
    cdsClients: z.preprocess((v) => {
      if (typeof v !== 'string') return v;
      try {
        return JSON.parse(v) as unknown;
      } catch {
        return 'not JSON';
      }
    }, z.array(cdsClient, { error: 'must be a JSON array of {iss, jku[], jwks?}' })).default([]),
    jwtClockSkewSeconds: z.coerce.number().int().min(0).max(600).default(60),
    fhirAllowlist: urlList.default([]),
    /** DICOMweb base URL of the PACS used when an ImagingStudy has no endpoint; its credentials go only there. */
    pacsUrl: httpUrl.optional(),
    /** Credentials for VOLMO_PACS_URL only: `basic:<user>:<password>` or `bearer:<token>` (never logged). */
    pacsAuth: z
      .string()
      .regex(/^(basic:[^:]+:.+|bearer:.+)$/, 'must be basic:<user>:<password> or bearer:<token>')
      .transform((v) => {
        const [kind, ...rest] = v.split(':');
        return kind === 'basic'
          ? ({ kind: 'basic', username: rest[0]!, password: rest.slice(1).join(':') } as const)
          : ({ kind: 'bearer', token: rest.join(':') } as const);
      })
      .optional(),
    /** Other PACS/VNA bases that ImagingStudy endpoints may name. */
    pacsAllowlist: urlList.default([]),
    /** Which VOLMO tasks a hook call runs. */
    tasks: z
      .union([z.array(z.string()), z.string()])
      .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
      .pipe(z.array(z.enum(['screening', 'dr-stage', 'mh-stage', 'describe', 'assess-plan'])))
      .transform((list) => ({
        screening: list.includes('screening'),
        drStaging: list.includes('dr-stage'),
        macularHoleStaging: list.includes('mh-stage'),
        description: list.includes('describe'),
        assessPlan: list.includes('assess-plan'),
      }))
      .default({ screening: true, drStaging: true, macularHoleStaging: true, description: false, assessPlan: false }),

    /** Private key (PKCS#8 PEM or JWK file) this service signs SMART Backend Services assertions with. */
    serviceKeyFile: z.string().min(1).optional(),
    /** The OAuth client id registered for this service's Backend Services access at the EHR. */
    backendClientId: z.string().min(1).default('volmo-backend'),

    /** The OAuth client id the EHR assigned to the SMART app (public client, PKCE). */
    smartClientId: z.string().min(1).default('volmo-smart-app'),
    /**
     * How the SMART app authenticates at the EHR's token endpoint: `none` (public client, PKCE) or
     * `private_key_jwt` (SMART 2.2 confidential-asymmetric: a signed client assertion on the code exchange and on
     * every refresh, verified by the EHR with the keys served at /.well-known/jwks.json).
     */
    smartClientAuth: z.enum(['none', 'private_key_jwt']).default('none'),
    /** A dedicated private key (PKCS#8 PEM or JWK, RS384/ES384) for the SMART app's assertions; unset: the service key. */
    smartClientKeyFile: z.string().min(1).optional(),
    /** Scopes the SMART app asks for in an EHR launch (a standalone launch asks `launch/patient` instead of `launch`). */
    smartScopes: z
      .string()
      .transform((v) => v.split(/\s+/).filter(Boolean).join(' '))
      .refine((v) => v.split(' ').includes('launch'), 'must include the launch scope')
      .default('launch openid fhirUser online_access patient/Patient.rs patient/Media.rs patient/DocumentReference.rs patient/Binary.rs'),
    /**
     * How the SMART app writes an approved draft back to an EHR (src/writeback): `off`, `fhir-standard`,
     * `epic`, `oracle`. For FHIR bases not named in VOLMO_WRITEBACK_PROFILES. Default: `fhir-standard` in the
     * sandbox profile, `off` in production.
     */
    writebackProfile: z.enum(WRITEBACK_PROFILES).optional(),
    /** Per EHR: a JSON object of FHIR base URL -> write-back profile, e.g. {"https://ehr.example/fhir/R4":"epic"}. */
    writebackProfiles: z.union([z.string(), z.record(z.string(), z.unknown())]).optional().transform((v, ctx) => {
      try {
        return parseProfileMap(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message.replace(/^VOLMO_WRITEBACK_PROFILES: /, '') });
        return z.NEVER;
      }
    }),
    /**
     * FHIR bases the AI draft is written to in the background when an analysis finishes (src/writeback/
     * background.ts), with this service's SMART Backend Services client (VOLMO_BACKEND_CLIENT_ID, the key of
     * VOLMO_SERVICE_KEY_FILE), under their write-back profile: `fhir-standard` (a preliminary report) and `epic`
     * (an unsigned note) only, never `oracle` or `off`. Needs a durable store (jobs). Default: none (the
     * sandbox's composition root names its own FHIR server). Each must be on VOLMO_FHIR_ALLOWLIST.
     */
    writebackBackground: urlList.optional(),
    /** Authorization servers (token endpoints) the SMART app may call, when they are not under a FHIR base URL. */
    smartAuthAllowlist: urlList.default([]),
    /**
     * EHR origins allowed to frame the SMART app (CSP `frame-ancestors`); none: `'self'` only. Origins only
     * (scheme://host[:port]); wildcards and paths are refused.
     */
    appFrameAncestors: z
      .union([z.array(z.string()), z.string()])
      .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
      .pipe(z.array(httpUrl.refine((u) => !u.includes('*') && new URL(u).origin === u.replace(/\/+$/, ''), 'must be an origin (scheme://host[:port]), no path or wildcard')))
      .transform((list) => list.map((u) => new URL(u).origin))
      .default([]),

    /** A site's operating points written by `volmo eval` (per-condition P(TRUE) bands, referable-DR band); read and checked at start-up. */
    findingsThresholdsFile: z.string().min(1).optional(),

    /** Assessment-and-plan steps: `chained` (each step sees the earlier questions and answers) or `independent` (VOLMO's evaluation). */
    assessPlanHistory: z.enum(['chained', 'independent']).default('chained'),
    /**
     * VOLMO's own assessment and plan as a second stage after the screening result is stored: `auto` runs it
     * when the model runs on a GPU execution provider (cuda, tensorrt, webgpu), not on CPU.
     */
    assessPlan: z.enum(['auto', 'always', 'never']).default('auto'),
    /** A site's override of the management-plan rule table (JSON; docs/clinical-logic.md §12), checked at start-up. */
    planRulesFile: z.string().min(1).optional(),

    modelDir: z.string().min(1).optional(),
    /**
     * Where inference runs: `local` (the in-process runtime on VOLMO_MODEL_DIR) or a comma-separated list of
     * worker base URLs (`volmo worker`, or an OpenAI-compatible engine serving InternVL2), used round-robin.
     */
    inference: z
      .string()
      .default('local')
      .transform((v) => (v.trim() === 'local' ? ('local' as const) : v.split(',').map((s) => s.trim().replace(/\/+$/, '')).filter(Boolean)))
      .pipe(z.union([z.literal('local'), z.array(httpUrl).min(1, 'local or at least one worker URL')])),
    /** Attempts per inference request across remote workers (a failed attempt moves to the next worker). */
    inferenceAttempts: z.coerce.number().int().min(1).max(10).default(3),
    /** Bearer token of `volmo worker` (both sides: the worker requires it, the service sends it). */
    workerToken: z.string().min(16, 'at least 16 characters (e.g. openssl rand -hex 32)').optional(),
    /** Where `volmo worker` listens (default 127.0.0.1; anything beyond loopback needs VOLMO_WORKER_TOKEN). */
    workerHost: z.string().min(1).default('127.0.0.1'),
    workerPort: port.default(8090),
    /** Largest request body `volmo worker` reads (images travel inside it as base64). */
    workerBodyLimit: z
      .string()
      .regex(/^\d+(kb|mb)$/i, 'like 64mb or 512kb')
      .default('64mb')
      .transform((v) => Number.parseInt(v, 10) * (/mb$/i.test(v) ? 1024 * 1024 : 1024)),
    executionProvider: z.enum(['cpu', 'webgpu', 'cuda', 'tensorrt']).default('cpu'),
    modelWorkers: z.coerce.number().int().min(1).max(16).default(1),
    maxTiles: z.coerce.number().int().min(1).max(12).default(6),
    inferenceTimeoutMs: positiveInt.default(120_000),
    /** Deadline of one hook call (evidence gathering + the bounded wait for the model). */
    hookTimeoutMs: positiveInt.default(15_000),
    /**
     * How long a hook call waits for a running analysis. 0 (default): never — a finished analysis is served,
     * otherwise the pending outcome. A few hundred ms suit GPU hosts where an exam takes ~100 ms.
     */
    hookWaitMs: z.coerce.number().int().min(0).max(600_000).default(0),
    /** What a hook answers while its analysis runs: `card` (an info card "AI review in progress") or `none` (no card). */
    pendingOutcome: z.enum(['card', 'none']).default('card'),
    /**
     * Analyse new eye images ahead of any hook (the image watcher). Default: off (the sandbox's composition
     * root turns it on for its FHIR server); on needs VOLMO_WATCH_FHIR_BASE.
     */
    watch: bool.optional(),
    /** The FHIR server whose ImagingStudy/Media records are polled (`_lastUpdated`), read with Backend Services. */
    watchFhirBase: httpUrl.optional(),
    /** Also poll the PACS (VOLMO_PACS_URL; the sandbox's Orthanc) with QIDO-RS for new OP/OPT studies. */
    watchPacs: bool.default(true),
    /** The identifier system of the DICOM PatientID on the FHIR server (Patient?identifier=system|id); unset: any system. */
    watchPatientIdentifierSystem: z.string().min(1).optional(),
    watchIntervalMs: z.coerce.number().int().min(200).max(86_400_000).default(30_000),
    /** Where the watcher keeps its high-water marks (default var/watcher-marks.json; the sandbox: its state dir). */
    watchStateFile: z.string().min(1).optional(),
    /** How long finished analyses are kept in memory for later hooks and review. */
    analysisTtlMs: positiveInt.default(6 * 3600_000),
    /**
     * Where the service keeps its state: `sqlite:<path>` (unset: sqlite:var/volmo.db; the sandbox: its state
     * dir), `postgres://…` (several replicas; `?schema=<name>` for a schema of its own) or
     * `memory:` (tests: nothing survives a restart).
     */
    databaseUrl: z
      .string()
      .regex(/^(memory:|sqlite:.+|postgres(ql)?:\/\/.+)$/, 'must be sqlite:<path>, postgres://… or memory:')
      .optional(),
    /** 32-byte key sealing PHI and tokens at rest (raw, hex or base64). Required in production; elsewhere generated when unset (beside the SQLite database, else var/data.key). */
    dataKeyFile: z.string().min(1).optional(),
    /**
     * Background analyses on a durable store run as jobs (src/store jobs table): how many this replica runs at
     * once (the model runtime is the bottleneck: 1). 0: this replica claims none (hooks only).
     */
    jobConcurrency: z.coerce.number().int().min(0).max(16).default(1),
    /** A claimed job's lease: renewed every third of it while the job runs; a dead replica's job is claimed again after it. */
    jobLeaseMs: z.coerce.number().int().min(1000).max(3_600_000).default(60_000),
    /** How often an idle replica looks for a job to claim (and a waiting hook for its job's end). */
    jobPollMs: z.coerce.number().int().min(50).max(60_000).default(1000),
    /** Attempts per job (a dead replica's lost attempt counts) before it is dead. */
    jobMaxAttempts: z.coerce.number().int().min(1).max(20).default(3),
    /** Backoff before the first retry; doubled per attempt, at most 30 minutes. */
    jobRetryBaseMs: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
    /** Days a finished analysis (findings and draft) is kept in the store after it finished. */
    analysisRetentionDays: z.coerce.number().int().min(1).max(3650).default(30),
    /**
     * Bearer token for operator endpoints (/metrics, /admin/feedback). Unset: they answer loopback callers
     * only (the sandbox); production requires it.
     */
    operatorToken: z.string().min(32, 'at least 32 characters (e.g. openssl rand -hex 32)').optional(),
    /** Worker threads for the image checks' pixel loops (DICOM frame conversion, gradability metrics). */
    imageWorkers: z.coerce.number().int().min(1).max(16).default(2),
    /** Total declared pixels one hook call may decode across all its images; images past it are refused with a reason. */
    maxStudyPixels: z.coerce.number().int().min(1_000_000).default(200_000_000),
    /** When no image of a hook call could be assessed, answer with an info card saying how many and why. */
    unassessedImagesCard: bool.default(true),
  })
  .superRefine((c, ctx) => {
    for (const base of c.writebackBackground ?? []) {
      if (!c.fhirAllowlist.includes(base.replace(/\/+$/, ''))) ctx.addIssue({ code: 'custom', path: ['writebackBackground'], message: `${base} must be on VOLMO_FHIR_ALLOWLIST` });
    }
    if (c.writebackBackground?.length && c.databaseUrl === 'memory:') ctx.addIssue({ code: 'custom', path: ['writebackBackground'], message: 'background write-back runs as jobs: it needs a durable store (VOLMO_DATABASE_URL sqlite: or postgres:)' });
    if (c.tasks.assessPlan && c.assessPlan === 'never') ctx.addIssue({ code: 'custom', path: ['assessPlan'], message: 'is never, but VOLMO_TASKS includes assess-plan' });
    if (c.smartClientKeyFile && c.smartClientAuth !== 'private_key_jwt') ctx.addIssue({ code: 'custom', path: ['smartClientKeyFile'], message: 'is only used with VOLMO_SMART_CLIENT_AUTH=private_key_jwt' });
    if (c.profile === 'production') {
      if (!c.publicUrl?.startsWith('https://')) ctx.addIssue({ code: 'custom', path: ['publicUrl'], message: 'production needs the https URL EHRs call' });
      if (c.cdsRequireJwt === false) ctx.addIssue({ code: 'custom', path: ['cdsRequireJwt'], message: 'production cannot accept unsigned hook calls' });
      if (c.cdsClients.length === 0) ctx.addIssue({ code: 'custom', path: ['cdsClients'], message: 'production needs at least one trusted CDS client (iss + jku/jwks)' });
      c.cdsClients.forEach((client, i) => {
        if (!client.fhirServers?.length) ctx.addIssue({ code: 'custom', path: ['cdsClients', i, 'fhirServers'], message: `production binds every CDS client to its FHIR servers (${client.iss} has none)` });
      });
      if (c.watch === true && !c.watchFhirBase) ctx.addIssue({ code: 'custom', path: ['watchFhirBase'], message: 'the image watcher needs the FHIR server to poll' });
      if (c.watchFhirBase && !c.fhirAllowlist.includes(c.watchFhirBase.replace(/\/+$/, ''))) ctx.addIssue({ code: 'custom', path: ['watchFhirBase'], message: 'must be on VOLMO_FHIR_ALLOWLIST' });
      if (!c.operatorToken) ctx.addIssue({ code: 'custom', path: ['operatorToken'], message: 'production needs an operator token for /metrics' });
      if (c.fhirAllowlist.length === 0) ctx.addIssue({ code: 'custom', path: ['fhirAllowlist'], message: 'production needs the allowed FHIR server URLs' });
      if (!c.modelDir && c.inference === 'local') ctx.addIssue({ code: 'custom', path: ['modelDir'], message: 'production needs a built model directory (or remote workers: VOLMO_INFERENCE)' });
      if (c.inference !== 'local' && !c.workerToken) ctx.addIssue({ code: 'custom', path: ['workerToken'], message: 'production sends remote workers their bearer token (VOLMO_WORKER_TOKEN)' });
      if (!c.dataKeyFile && c.databaseUrl !== 'memory:') ctx.addIssue({ code: 'custom', path: ['dataKeyFile'], message: 'production needs the data key that encrypts PHI and tokens at rest (openssl rand -hex 32 > <file>; chmod 600 <file>)' });
      if (!c.serviceKeyFile) ctx.addIssue({ code: 'custom', path: ['serviceKeyFile'], message: 'production needs a stable signing key (its public half is served at /.well-known/jwks.json and registered with the EHR)' });
    }
  });

export type Config = Readonly<
  Omit<z.infer<typeof schema>, 'host' | 'publicUrl' | 'writebackProfile'> & { host: string; publicUrl: string; findingsThresholds?: SiteThresholds; planRules: PlanRuleTable; writebackProfile: WritebackProfileName }
>;

/** Environment variable name for a config key: publicUrl -> VOLMO_PUBLIC_URL. */
export function envName(key: string): string {
  return `VOLMO_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

const KEYS = Object.keys(schema.shape);
/** Read by scripts (npm start/test, doctor), not by the service. */
const SCRIPT_VARIABLES = new Set(['VOLMO_CONFIG_FILE', 'VOLMO_NO_APT', 'VOLMO_NO_PACS', 'VOLMO_NO_BROWSER', 'VOLMO_REQUIRE_WEBGPU']);
/**
 * `VOLMO_SANDBOX` and `VOLMO_SANDBOX_*` (file keys `sandbox*`) belong to the sandbox's composition root
 * (src/sandbox/settings.ts reads them through `readSettings`); the service itself has no sandbox setting.
 */
export const isSandboxVariable = (name: string): boolean => name === 'VOLMO_SANDBOX' || name.startsWith('VOLMO_SANDBOX_');
const isSandboxKey = (key: string): boolean => /^sandbox([A-Z]|$)/.test(key);

export function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.map(String).join('.');
  const top = String(issue.path[0] ?? '');
  return `${envName(top)}${key.includes('.') ? ` (${key})` : ''}: ${issue.message}`;
}

/**
 * The raw values of `keys` from the optional JSON file (VOLMO_CONFIG_FILE) and the environment (which
 * wins). `fileKeys`: the file's keys, for the unknown-key check of each reader.
 */
export function readSettings(keys: readonly string[], env: Record<string, string | undefined>): { raw: Record<string, unknown>; fileKeys: string[] } {
  let fromFile: Record<string, unknown> = {};
  const file = env.VOLMO_CONFIG_FILE;
  if (file) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new AppError('config_invalid', `VOLMO_CONFIG_FILE: cannot read ${file}: ${(e as Error).message}`);
    }
  }
  const raw: Record<string, unknown> = {};
  for (const key of keys) {
    if (key in fromFile) raw[key] = fromFile[key];
    const v = env[envName(key)];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  return { raw, fileKeys: Object.keys(fromFile) };
}

/**
 * Parses configuration from an environment object (default: process.env) and an optional JSON file.
 * Throws AppError('config_invalid') listing every problem, each named by its environment variable.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // `sandbox` is read only for the production check below (the schema drops it).
  const { raw, fileKeys } = readSettings([...KEYS, 'sandbox'], env);
  const unknown = fileKeys.filter((k) => !KEYS.includes(k) && !isSandboxKey(k));
  if (unknown.length) throw new AppError('config_invalid', `VOLMO_CONFIG_FILE: unknown keys: ${unknown.join(', ')}`);
  const known = new Set(KEYS.map(envName));
  const stray = Object.keys(env).filter((k) => k.startsWith('VOLMO_') && !known.has(k) && !SCRIPT_VARIABLES.has(k) && !isSandboxVariable(k) && !k.startsWith('VOLMO_TEST_') && !k.startsWith('VOLMO_BENCH_'));
  const parsed = schema.safeParse(raw);
  const problems = parsed.success ? [] : parsed.error.issues.map(describeIssue);
  for (const k of stray) problems.push(`${k}: unknown setting (typo?)`);
  // The production profile refuses the sandbox whoever would start it.
  const profile = parsed.success ? parsed.data.profile : raw.profile;
  if (profile === 'production' && bool.safeParse(raw.sandbox).data === true) {
    problems.push('VOLMO_SANDBOX: the sandbox cannot run in the production profile');
  }
  // Checked even when other settings are bad, so that one start-up shows every problem.
  const thresholdsFile = typeof raw.findingsThresholdsFile === 'string' && raw.findingsThresholdsFile !== '' ? raw.findingsThresholdsFile : undefined;
  const findingsThresholds = thresholdsFile ? readThresholdsFile(thresholdsFile, problems) : undefined;
  if (!parsed.success || problems.length) {
    throw new AppError('config_invalid', `invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
  const c = parsed.data;
  const host = c.host ?? (c.profile === 'production' ? '0.0.0.0' : '127.0.0.1');
  const publicUrl = (c.publicUrl ?? `http://127.0.0.1:${c.port}`).replace(/\/+$/, '');
  const planRules = c.planRulesFile ? readPlanRules(c.planRulesFile) : defaultPlanRuleTable();
  const writebackProfile = c.writebackProfile ?? (c.profile === 'production' ? 'off' : 'fhir-standard');
  return Object.freeze({ ...c, host, publicUrl, planRules, writebackProfile, ...(findingsThresholds ? { findingsThresholds } : {}) });
}

/** Reads and checks VOLMO_FINDINGS_THRESHOLDS_FILE; a problem is added to `problems` (reported with the rest). */
function readThresholdsFile(file: string, problems: string[]): SiteThresholds | undefined {
  const name = envName('findingsThresholdsFile');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push(`${name}: cannot read ${file}: ${(e as Error).message}`);
    return undefined;
  }
  try {
    return parseSiteThresholds(json, name);
  } catch (e) {
    problems.push((e as Error).message);
    return undefined;
  }
}

function readPlanRules(file: string): PlanRuleTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new AppError('config_invalid', `VOLMO_PLAN_RULES_FILE: cannot read ${file}: ${(e as Error).message}`);
  }
  return parsePlanRules(text, file);
}
