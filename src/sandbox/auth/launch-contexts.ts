/**
 * Launch contexts of the sandbox authorization server: an EHR launch id (opaque, one-time, short-lived)
 * maps to the patient/encounter/user the EHR had open; once an authorization is granted the context is
 * kept per grant, so the token endpoint can return it and the access token can carry it.
 */
import { randomBytes } from 'node:crypto';

export interface LaunchContext {
  patient?: string;
  encounter?: string;
  fhirUser?: string;
  /** A CDS card link's `appContext`, handed to the app in the token response as the EHR must (CDS Hooks 2.0). */
  appContext?: string;
}

/** What the token response and the access token carry for one grant. */
export interface GrantContext extends LaunchContext {
  needPatientBanner: boolean;
  smartStyleUrl?: string;
}

const ID_RE = /^[A-Za-z0-9.-]{1,64}$/;

export class LaunchStore {
  private readonly launches = new Map<string, { ctx: LaunchContext; expiresAt: number }>();

  constructor(
    private readonly ttlMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Registers a launch and returns its id (128 random bits, base64url). */
  create(ctx: LaunchContext): string {
    for (const [key, value] of Object.entries(ctx)) {
      if (value !== undefined && key !== 'fhirUser' && key !== 'appContext' && !ID_RE.test(value)) {
        throw new TypeError(`createLaunch: ${key} must be a FHIR id (got an invalid value)`);
      }
    }
    if (ctx.fhirUser !== undefined && !/^(Practitioner|PractitionerRole|Patient|RelatedPerson|Person)\/[A-Za-z0-9.-]{1,64}$/.test(ctx.fhirUser)) {
      throw new TypeError('createLaunch: fhirUser must be a relative reference such as Practitioner/123');
    }
    if (ctx.appContext !== undefined && ctx.appContext.length > 4096) throw new TypeError('createLaunch: appContext is too long');
    this.sweep();
    const id = randomBytes(16).toString('base64url');
    this.launches.set(id, { ctx: { ...ctx }, expiresAt: this.now() + this.ttlMs });
    return id;
  }

  /** Returns and forgets the context of `id`; undefined when unknown, used or expired. */
  take(id: string): LaunchContext | undefined {
    const entry = this.launches.get(id);
    this.launches.delete(id);
    if (!entry || entry.expiresAt < this.now()) return undefined;
    return entry.ctx;
  }

  private sweep(): void {
    const t = this.now();
    for (const [id, entry] of this.launches) if (entry.expiresAt < t) this.launches.delete(id);
  }
}
