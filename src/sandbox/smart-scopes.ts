/**
 * SMART App Launch scopes, pure: parsing v2 (`patient/Observation.rs`, `user/*.cruds`,
 * `patient/Observation.rs?category=...`) and v1 (`patient/*.read`, `user/Patient.write`, `system/*.*`)
 * resource scopes, deciding whether a set of granted scopes allows one FHIR interaction, and deciding
 * which requested scopes a client's registration covers (for the authorization server).
 */
import { AppError } from '../errors.js';

export type ScopeContext = 'patient' | 'user' | 'system';
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

export interface ResourceScope {
  readonly raw: string;
  readonly context: ScopeContext;
  /** A resource type, or '*' for all. */
  readonly resourceType: string;
  readonly permissions: ReadonlySet<Permission>;
  /** v2 only: the query after '?', e.g. `category=http://...|vital-signs`, restricting matching resources. */
  readonly constraint?: string;
  readonly version: 1 | 2;
}

export interface ParsedScopes {
  readonly resource: readonly ResourceScope[];
  /** Non-resource scopes kept verbatim: `launch`, `launch/patient`, `openid`, `fhirUser`, `offline_access`, ... */
  readonly other: readonly string[];
}

const PERMISSION_ORDER: readonly Permission[] = ['c', 'r', 'u', 'd', 's'];
const V1: Record<string, readonly Permission[]> = {
  read: ['r', 's'],
  write: ['c', 'u', 'd'],
  '*': ['c', 'r', 'u', 'd', 's'],
};
const RESOURCE_SCOPE_RE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]{1,63})\.([^?\s]+)(?:\?(\S+))?$/;

/** Parses one scope. Returns undefined for non-resource scopes; throws AppError('bad_request') for malformed ones. */
export function parseScope(scope: string): ResourceScope | undefined {
  if (!/^(patient|user|system)\//.test(scope)) return undefined;
  const m = RESOURCE_SCOPE_RE.exec(scope);
  if (!m) throw new AppError('bad_request', `malformed SMART resource scope: ${scope}`);
  const [, context, resourceType, suffix, constraint] = m as unknown as [string, ScopeContext, string, string, string?];
  const v1 = V1[suffix];
  if (v1) {
    if (constraint !== undefined) throw new AppError('bad_request', `SMART v1 scope cannot carry a query: ${scope}`);
    return { raw: scope, context, resourceType, permissions: new Set(v1), version: 1 };
  }
  if (!isOrderedPermissionString(suffix)) {
    throw new AppError('bad_request', `SMART v2 permissions must be a subset of "cruds" in that order: ${scope}`);
  }
  return {
    raw: scope,
    context,
    resourceType,
    permissions: new Set(suffix.split('') as Permission[]),
    ...(constraint !== undefined ? { constraint } : {}),
    version: 2,
  };
}

function isOrderedPermissionString(s: string): boolean {
  let last = -1;
  for (const ch of s) {
    const i = PERMISSION_ORDER.indexOf(ch as Permission);
    if (i <= last) return false;
    last = i;
  }
  return s.length > 0;
}

/** Parses a space-separated scope string. Malformed resource scopes throw (see parseScope). */
export function parseScopes(scope: string | undefined): ParsedScopes {
  const resource: ResourceScope[] = [];
  const other: string[] = [];
  for (const s of (scope ?? '').split(/\s+/).filter(Boolean)) {
    const parsed = parseScope(s);
    if (parsed) resource.push(parsed);
    else other.push(s);
  }
  return { resource, other };
}

/** Like parseScopes, but drops malformed resource scopes instead of throwing (for tokens already issued). */
export function parseScopesLenient(scope: string | undefined): ParsedScopes {
  const resource: ResourceScope[] = [];
  const other: string[] = [];
  for (const s of (scope ?? '').split(/\s+/).filter(Boolean)) {
    try {
      const parsed = parseScope(s);
      if (parsed) resource.push(parsed);
      else other.push(s);
    } catch {
      // ignored: grants nothing
    }
  }
  return { resource, other };
}

export type FhirInteraction = 'read' | 'vread' | 'history' | 'search' | 'create' | 'update' | 'patch' | 'delete';

const INTERACTION_PERMISSION: Record<FhirInteraction, Permission> = {
  read: 'r',
  vread: 'r',
  history: 'r',
  search: 's',
  create: 'c',
  update: 'u',
  patch: 'u',
  delete: 'd',
};

export function permissionFor(interaction: FhirInteraction): Permission {
  return INTERACTION_PERMISSION[interaction];
}

export type AccessDecision =
  | {
      readonly allowed: true;
      /** Set when only patient/ scopes grant the access: the data must be in this patient's compartment. */
      readonly patient?: string;
      /** Set when every granting scope is constrained: the data must match at least one of these queries. */
      readonly constraints?: readonly string[];
    }
  | { readonly allowed: false; readonly reason: string };

/**
 * Decides whether `scopes` allow `interaction` on `resourceType`. user/ and system/ scopes win over
 * patient/ ones (no compartment limit); patient/ scopes need the token's patient context.
 */
export function decideAccess(
  scopes: ParsedScopes,
  interaction: FhirInteraction,
  resourceType: string,
  patient: string | undefined,
): AccessDecision {
  const permission = permissionFor(interaction);
  const matching = scopes.resource.filter(
    (s) => (s.resourceType === '*' || s.resourceType === resourceType) && s.permissions.has(permission),
  );
  if (matching.length === 0) {
    return { allowed: false, reason: `no granted scope allows '${permission}' on ${resourceType}` };
  }
  const broad = matching.filter((s) => s.context !== 'patient');
  const chosen = broad.length > 0 ? broad : matching;
  const constraints = chosen.some((s) => s.constraint === undefined)
    ? undefined
    : chosen.map((s) => s.constraint as string);
  if (broad.length > 0) return { allowed: true, ...(constraints ? { constraints } : {}) };
  if (patient === undefined || patient === '') {
    return { allowed: false, reason: 'patient/ scopes need a patient in the launch context' };
  }
  return { allowed: true, patient, ...(constraints ? { constraints } : {}) };
}

/** Whether `granted` (e.g. a client's registered scope) covers everything `requested` asks for. */
export function scopeCovers(granted: ResourceScope, requested: ResourceScope): boolean {
  if (granted.context !== requested.context) return false;
  if (granted.resourceType !== '*' && granted.resourceType !== requested.resourceType) return false;
  if (granted.constraint !== undefined && granted.constraint !== requested.constraint) return false;
  for (const p of requested.permissions) if (!granted.permissions.has(p)) return false;
  return true;
}

/**
 * The subset of `requested` scopes a client registered with `registered` may receive: non-resource scopes
 * must be registered verbatim; resource scopes must be covered by a registered resource scope. Malformed
 * requested scopes are dropped (servers may grant less than asked).
 */
export function allowedScopes(requested: string | undefined, registered: string): string[] {
  const reg = parseScopesLenient(registered);
  const regOther = new Set(reg.other);
  const out: string[] = [];
  for (const s of new Set((requested ?? '').split(/\s+/).filter(Boolean))) {
    let parsed: ResourceScope | undefined;
    try {
      parsed = parseScope(s);
    } catch {
      continue;
    }
    if (parsed ? reg.resource.some((g) => scopeCovers(g, parsed)) : regOther.has(s)) out.push(s);
  }
  return out;
}
