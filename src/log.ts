/**
 * Structured JSON logging (pino). Tokens, credentials and patient identifiers are removed here, by
 * key and by value pattern, so that no call site can leak them by mistake.
 */
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/** Keys whose values are never written, wherever they appear in a log object. */
const SECRET_KEYS = new Set(
  [
    'authorization', 'access_token', 'accessToken', 'refresh_token', 'refreshToken', 'id_token', 'idToken',
    'token', 'fhirAuthorization', 'client_secret', 'clientSecret', 'client_assertion', 'password', 'cookie',
    'set-cookie', 'jwt', 'code_verifier', 'privateKey', 'private_key', 'd', 'launch',
    // patient identifiers and demographics
    'patient', 'patientId', 'subject', 'name', 'given', 'family', 'birthDate', 'mrn', 'identifier', 'ssn',
    'address', 'telecom', 'phone', 'email', 'text', 'note', 'prefetch', 'context',
  ].map((k) => k.toLowerCase()),
);

const JWT_RE = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
const BEARER_RE = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
const PATIENT_REF_RE = /\b(Patient|Encounter|RelatedPerson)\/[A-Za-z0-9.-]{1,64}/g;
const QUERY_SECRET_RE = /([?&](?:patient|subject|code|state|launch|access_token|token|identifier|name|birthdate)=)[^&\s"]*/gi;

export const REDACTED = '[redacted]';

/** Redacts secrets and identifiers from a string (JWTs, bearer credentials, Patient/x references, query values). */
export function redactString(s: string): string {
  return s
    .replace(JWT_RE, REDACTED)
    .replace(BEARER_RE, `$1 ${REDACTED}`)
    .replace(PATIENT_REF_RE, `$1/${REDACTED}`)
    .replace(QUERY_SECRET_RE, `$1${REDACTED}`);
}

/** Deep-copies a value with secret keys dropped and strings scrubbed. Cycles and depth are bounded. */
export function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8 || seen.has(value)) return '[…]';
  seen.add(value);
  if (value instanceof Error) {
    const out: Record<string, unknown> = { type: value.name, message: redactString(value.message) };
    const code = (value as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    if (value.stack) out.stack = redactString(value.stack);
    if (value.cause !== undefined) out.cause = redact(value.cause, depth + 1, seen);
    return out;
  }
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => redact(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEYS.has(k.toLowerCase()) ? REDACTED : redact(v, depth + 1, seen);
  }
  return out;
}

export interface LoggerOptions {
  level?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to inspect output. */
  destination?: NodeJS.WritableStream;
  name?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'volmo-cds',
      level: options.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        // Every argument is scrubbed: objects by key and by value, messages by pattern.
        logMethod(args, method) {
          const clean = args.map((a) => redact(a)) as Parameters<typeof method>;
          return method.apply(this, clean);
        },
      },
      serializers: { err: (e: unknown) => redact(e) },
    },
    (options.destination ?? process.stdout) as pino.DestinationStream,
  );
}

/** A logger that writes nothing (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
