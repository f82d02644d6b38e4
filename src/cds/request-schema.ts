/** Validation of incoming CDS Hooks 2.0 requests (the spec's tables and invariants cds-r-1, cds-r-2). */
import { z } from 'zod';
import { AppError } from '../errors.js';

const reference = (types: string[]) =>
  z.string().regex(new RegExp(`^(${types.join('|')})/[A-Za-z0-9\\-.]{1,64}$`), `must be a reference to ${types.join(' or ')}`);
const fhirId = z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/, 'must be a FHIR id');

const fhirAuthorization = z.object({
  access_token: z.string().min(1),
  token_type: z.string().refine((t) => t.toLowerCase() === 'bearer', 'must be Bearer'),
  /** Optional in practice (some EHRs omit it): the token is then treated as short-lived (token-source.ts). */
  expires_in: z.number().int().nonnegative().optional(),
  scope: z.string().min(1),
  subject: z.string().min(1),
  patient: fhirId.optional(),
});

const bundle = z.object({ resourceType: z.literal('Bundle') }).passthrough();

const contexts = {
  'patient-view': z
    .object({ userId: reference(['Practitioner', 'PractitionerRole', 'Patient', 'RelatedPerson']), patientId: fhirId, encounterId: fhirId.optional() })
    .passthrough(),
  'order-select': z
    .object({
      userId: reference(['Practitioner', 'PractitionerRole']),
      patientId: fhirId,
      encounterId: fhirId.optional(),
      selections: z.array(z.string()).min(1),
      draftOrders: bundle,
    })
    .passthrough(),
  'order-sign': z
    .object({ userId: reference(['Practitioner', 'PractitionerRole']), patientId: fhirId, encounterId: fhirId.optional(), draftOrders: bundle })
    .passthrough(),
} as const;

export type HookName = keyof typeof contexts;

const base = z.object({
  hook: z.string().min(1),
  hookInstance: z.string().min(8).max(128),
  fhirServer: z.string().url().optional(),
  /** Checked on its own (see usableAuthorization): an unusable one is dropped, not fatal. */
  fhirAuthorization: z.unknown().optional(),
  context: z.record(z.string(), z.unknown()),
  prefetch: z.record(z.string(), z.unknown().nullable()).optional(),
  extension: z.record(z.string(), z.unknown()).optional(),
});

export type FhirAuthorization = z.infer<typeof fhirAuthorization>;

export type CdsRequest = Omit<z.infer<typeof base>, 'context' | 'fhirAuthorization'> & {
  hook: HookName;
  fhirAuthorization?: FhirAuthorization;
  /** Why a fhirAuthorization that came with the call is not used (the call then works from prefetch alone). */
  fhirAuthorizationUnusable?: string;
  context: { userId: string; patientId: string; encounterId?: string; selections?: string[]; draftOrders?: Record<string, unknown> } & Record<string, unknown>;
};

function describe(issues: z.core.$ZodIssue[]): string {
  return issues.map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`).join('; ');
}

/** Parses a hook request body for the service's declared hook; throws AppError('bad_request') naming every problem. */
export function parseCdsRequest(body: unknown, expectedHook: HookName): CdsRequest {
  const parsed = base.safeParse(body);
  if (!parsed.success) throw new AppError('bad_request', `invalid CDS Hooks request: ${describe(parsed.error.issues)}`);
  const req = parsed.data;
  if (req.hook !== expectedHook) throw new AppError('bad_request', `this service answers the ${expectedHook} hook, not ${req.hook}`);
  const ctx = contexts[expectedHook].safeParse(req.context);
  if (!ctx.success) throw new AppError('bad_request', `invalid ${expectedHook} context: ${describe(ctx.error.issues.map((i) => ({ ...i, path: ['context', ...i.path] })))}`);
  const ctxPatient = (ctx.data as { patientId: string }).patientId;
  const auth = usableAuthorization(req.fhirAuthorization, req.fhirServer, ctxPatient);
  const { fhirAuthorization: _raw, ...rest } = req;
  return { ...rest, hook: expectedHook, context: ctx.data as CdsRequest['context'], ...auth };
}

/**
 * The call's fhirAuthorization when it can be used, else the reason it cannot. Lenient where the spec lets
 * a service be: a malformed token, one without fhirServer (cds-r-1), patient/ scopes without patient
 * (cds-r-2) or a token for another patient is not used — the call goes on from prefetch alone — rather
 * than failing the whole hook.
 */
function usableAuthorization(raw: unknown, fhirServer: string | undefined, patientId: string): Pick<CdsRequest, 'fhirAuthorization' | 'fhirAuthorizationUnusable'> {
  if (raw === undefined) return {};
  const parsed = fhirAuthorization.safeParse(raw);
  if (!parsed.success) return { fhirAuthorizationUnusable: `malformed: ${describe(parsed.error.issues.map((i) => ({ ...i, path: ['fhirAuthorization', ...i.path] })))}` };
  const auth = parsed.data;
  if (!fhirServer) return { fhirAuthorizationUnusable: 'fhirAuthorization without fhirServer (cds-r-1)' };
  if (/(^|\s)patient\//.test(auth.scope) && !auth.patient) return { fhirAuthorizationUnusable: 'patient/ scopes without patient (cds-r-2)' };
  if (auth.patient !== undefined && auth.patient !== patientId) return { fhirAuthorizationUnusable: 'the token is for another patient than the context patient' };
  return { fhirAuthorization: auth };
}
