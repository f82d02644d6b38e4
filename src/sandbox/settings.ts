/**
 * The sandbox's own settings (VOLMO_SANDBOX, VOLMO_SANDBOX_*): read by the sandbox's composition root
 * (src/sandbox/service.ts, `volmo sandbox`, `volmo demo`), never by the service. Same sources as the
 * service's configuration (environment, then VOLMO_CONFIG_FILE with the camelCase keys).
 */
import { z } from 'zod';
import { bool, describeIssue, envName, isSandboxVariable, port, readSettings, type Config } from '../config.js';
import { AppError } from '../errors.js';

const schema = z.object({
  /** Start the local EHR sandbox with the service (default: in the sandbox profile). */
  sandbox: bool.optional(),
  sandboxFhirPort: port.default(8103),
  sandboxAuthPort: port.default(8104),
  sandboxPacsPort: port.default(8142),
  sandboxEhrPort: port.default(8105),
  /** Where the sandbox keeps state that must survive restarts (the EHR simulator's signing key). */
  sandboxStateDir: z.string().min(1).default('var/sandbox'),
  sandboxPacs: z.enum(['auto', 'orthanc', 'none']).default('auto'),
  /** Sandbox without VOLMO_MODEL_DIR: `tiny` builds and loads the tiny random-weight test model (labelled as such everywhere). */
  sandboxModel: z.enum(['tiny', 'none']).default('tiny'),
  /**
   * Which EHR the sandbox FHIR server behaves like for writes (fhir/ehr-behaviour.ts): `standard` accepts
   * transactions and conditional creates; `epic` and `oracle` refuse what those EHRs refuse. The service's
   * write-back profile for the sandbox follows it (fhir-standard, epic, oracle) unless VOLMO_WRITEBACK_PROFILES names the sandbox.
   */
  sandboxEhrProfile: z.enum(['standard', 'epic', 'oracle']).default('standard'),
});

export type SandboxSettings = Readonly<Omit<z.infer<typeof schema>, 'sandbox'> & { sandbox: boolean }>;

const KEYS = Object.keys(schema.shape);

/** Throws AppError('config_invalid') listing every problem; `profile`: the service's (the default of VOLMO_SANDBOX). */
export function loadSandboxSettings(env: Record<string, string | undefined>, profile: Config['profile'] = 'sandbox'): SandboxSettings {
  const { raw } = readSettings(KEYS, env);
  const parsed = schema.safeParse(raw);
  const problems = parsed.success ? [] : parsed.error.issues.map(describeIssue);
  const known = new Set(KEYS.map(envName));
  for (const k of Object.keys(env).filter((k) => isSandboxVariable(k) && !known.has(k))) problems.push(`${k}: unknown setting (typo?)`);
  if (!parsed.success || problems.length) throw new AppError('config_invalid', `invalid configuration:\n  - ${problems.join('\n  - ')}`);
  const sandbox = parsed.data.sandbox ?? profile === 'sandbox';
  if (sandbox && profile === 'production') throw new AppError('config_invalid', 'invalid configuration:\n  - VOLMO_SANDBOX: the sandbox cannot run in the production profile');
  return Object.freeze({ ...parsed.data, sandbox });
}
