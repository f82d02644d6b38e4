/**
 * A per-request view of the store that enforces the caller's SMART scopes on every repository call. The
 * FHIR router (and its batch/transaction processor) only talks to this view, so each transaction entry is
 * checked on its own and a refused entry rolls the whole transaction back.
 *  - read/vread/history need `r`, search `s`, create `c`, update/patch `u`, delete `d`;
 *  - patient/ grants limit reads to, and writes into, the token's patient compartment (403 otherwise) and
 *    add a patient filter to searches; _include'd resources are dropped unless readable;
 *  - v2 scope constraints (`?category=...`) must match the resource (searches get the filter added).
 */
import '../../platform/websocket-shim.js';
import { OperationOutcomeError, Operator, type Operation, type SearchRequest, type WithId } from '@medplum/core';
import {
  FhirRepository,
  type CreateResourceOptions,
  type DeleteResourceOptions,
  type ReadHistoryOptions,
  type RepositoryMode,
  type UpdateResourceOptions,
} from '@medplum/fhir-router';
import type { Bundle, Parameters, Reference, Resource } from '@medplum/fhirtypes';
import { decideAccess, type FhirInteraction } from '../smart-scopes.js';
import type { AccessContext } from './bearer-auth.js';
import { addConstraint, inPatientCompartment, matchesConstraint, restrictToPatient } from './compartment.js';
import { outcomeOf } from './http-io.js';
import type { SandboxRepository } from './sandbox-repository.js';

type Decision = { patient?: string; constraints?: readonly string[] };

export class AccessRepository extends FhirRepository {
  constructor(
    private readonly store: SandboxRepository,
    private readonly access: AccessContext,
  ) {
    super();
  }

  private decide(interaction: FhirInteraction, resourceType: string): Decision {
    const d = decideAccess(this.access.scopes, interaction, resourceType, this.access.patient);
    if (!d.allowed) throw forbidden(d.reason);
    return d;
  }

  /** Throws 403 unless `resource` lies within the decision's patient compartment and scope constraints. */
  private assertWithin(d: Decision, resource: Resource, what: string): void {
    if (d.patient !== undefined && !inPatientCompartment(resource, d.patient)) {
      throw forbidden(`${what} is outside the launch patient's compartment`);
    }
    if (d.constraints && !d.constraints.some((c) => matchesConstraint(resource, c))) {
      throw forbidden(`${what} does not match the granted scope's constraints`);
    }
  }

  setMode(_mode: RepositoryMode): void {
    // single in-memory store: no reader/writer split
  }

  generateId(): string {
    return this.store.generateId();
  }

  async createResource<T extends Resource>(resource: T, options?: CreateResourceOptions): Promise<WithId<T>> {
    const d = this.decide('create', resource.resourceType);
    this.assertWithin(d, resource, 'the new resource');
    return this.store.createResource(resource, options);
  }

  async readResource<T extends Resource>(resourceType: string, id: string): Promise<WithId<T>> {
    const d = this.decide('read', resourceType);
    const resource = await this.store.readResource<WithId<T>>(resourceType, id);
    this.assertWithin(d, resource, 'the resource');
    return resource;
  }

  async readReference<T extends Resource>(reference: Reference<T>): Promise<WithId<T>> {
    const [type, id, ...rest] = (reference.reference ?? '').split('/');
    if (!type || !id || rest.length > 0) return this.store.readReference(reference); // store raises the 400
    return this.readResource<T>(type, id);
  }

  async readReferences<T extends Resource>(references: readonly Reference<T>[]): Promise<(T | Error)[]> {
    return Promise.all(references.map((r) => this.readReference(r).catch((err: unknown) => toError(err))));
  }

  async readHistory<T extends Resource>(resourceType: string, id: string, options?: ReadHistoryOptions): Promise<Bundle<WithId<T>>> {
    await this.readResource(resourceType, id);
    this.decide('history', resourceType);
    void options; // the memory store returns the whole history
    return this.store.readHistory(resourceType, id) as Promise<Bundle<WithId<T>>>;
  }

  async readVersion<T extends Resource>(resourceType: string, id: string, vid: string): Promise<WithId<T>> {
    const d = this.decide('vread', resourceType);
    const version = (await this.store.readVersion<T>(resourceType, id, vid)) as WithId<T>;
    this.assertWithin(d, version, 'the resource version');
    return version;
  }

  async updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    const d = this.decide('update', resource.resourceType);
    this.assertWithin(d, resource, 'the updated resource');
    if (resource.id) {
      const existing = await this.store.readResource(resource.resourceType, resource.id).catch(() => undefined);
      if (existing) this.assertWithin(d, existing, 'the existing resource');
    }
    return this.store.updateResource(resource, options);
  }

  async patchResource<T extends Resource>(
    resourceType: T['resourceType'],
    id: string,
    patch: Operation[] | Parameters,
    options?: UpdateResourceOptions,
  ): Promise<WithId<T>> {
    const d = this.decide('patch', resourceType);
    this.assertWithin(d, await this.store.readResource(resourceType, id), 'the existing resource');
    return this.store.withTransaction(async () => {
      const patched = await this.store.patchResource<T>(resourceType, id, patch, options);
      this.assertWithin(d, patched, 'the patched resource'); // throwing here rolls the patch back
      return patched;
    });
  }

  async deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
    const d = this.decide('delete', resourceType);
    this.assertWithin(d, await this.store.readResource(resourceType, id), 'the resource');
    await this.store.deleteResource(resourceType, id, options);
  }

  async search<T extends Resource>(searchRequest: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    if (searchRequest.types?.length) {
      // Multi-type (`GET [base]?_type=...`): allowed only when every type is granted without limits.
      for (const type of searchRequest.types) {
        const d = this.decide('search', type);
        if (d.patient !== undefined || d.constraints) throw forbidden('multi-type search is not available under patient/ or constrained scopes');
      }
      return this.store.search(searchRequest) as Promise<Bundle<WithId<T>>>;
    }
    const d = this.decide('search', searchRequest.resourceType);
    let req = searchRequest as SearchRequest;
    if (d.patient !== undefined) req = restrictToPatient(req, d.patient);
    if (d.constraints) {
      if (d.constraints.length > 1) throw forbidden('searches under several constrained scopes are not supported');
      req = addConstraint(req, d.constraints[0] as string);
    }
    const bundle = (await this.store.search(req)) as Bundle<WithId<T>>;
    if (bundle.entry) bundle.entry = bundle.entry.filter((e) => e.search?.mode !== 'include' || this.canRead(e.resource));
    return bundle;
  }

  private canRead(resource: Resource | undefined): boolean {
    if (!resource) return false;
    const d = decideAccess(this.access.scopes, 'read', resource.resourceType, this.access.patient);
    if (!d.allowed) return false;
    try {
      this.assertWithin(d, resource, 'the included resource');
      return true;
    } catch {
      return false;
    }
  }

  async searchByReference<T extends Resource>(
    searchRequest: SearchRequest<T>,
    referenceField: string,
    references: string[],
  ): Promise<Record<string, WithId<T>[]>> {
    const out: Record<string, WithId<T>[]> = {};
    for (const reference of references) {
      const bundle = await this.search<T>({
        ...searchRequest,
        filters: [...(searchRequest.filters ?? []), { code: referenceField, operator: Operator.EQUALS, value: reference }],
      });
      out[reference] = (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
    }
    return out;
  }

  async withTransaction<TResult>(callback: (repo: this) => Promise<TResult>): Promise<TResult> {
    return this.store.withTransaction(() => callback(this));
  }
}

function forbidden(reason: string): OperationOutcomeError {
  return new OperationOutcomeError(outcomeOf('forbidden', `Forbidden: ${reason}`));
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
