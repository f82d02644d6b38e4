/**
 * The sandbox's FHIR store: @medplum/fhir-router's MemoryRepository plus the behaviour a real server has
 * and the memory store lacks:
 *  - every create/update (and so every patch) is validated against the R4 structure definitions;
 *  - `withTransaction` rolls back: a failure anywhere in the callback restores the state from before it;
 *  - reading a deleted resource answers 410 Gone instead of 404.
 *
 * Rollback takes a snapshot of MemoryRepository's two maps (resource and history). They are private in
 * the TypeScript declarations, so the constructor checks they exist and fails loudly if a new version of
 * @medplum/fhir-router renames them. The sandbox holds a few hundred resources; copying the maps is cheap.
 */
import '../../platform/websocket-shim.js';
import { gone, OperationOutcomeError, validateResource } from '@medplum/core';
import { MemoryRepository, type CreateResourceOptions, type DeleteResourceOptions } from '@medplum/fhir-router';
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from './definitions.js';

type WithId<T> = T & { id: string };

interface MemoryInternals {
  resources: Map<string, Map<string, Resource>>;
  history: Map<string, Map<string, Resource[]>>;
}

interface Snapshot {
  resources: Map<string, Map<string, Resource>>;
  history: Map<string, Map<string, Resource[]>>;
  deleted: Set<string>;
}

export class SandboxRepository extends MemoryRepository {
  private readonly deleted = new Set<string>();
  private inTransaction = false;

  constructor() {
    super();
    loadFhirDefinitions();
    const internals = this as unknown as Partial<MemoryInternals>;
    if (!(internals.resources instanceof Map) || !(internals.history instanceof Map)) {
      throw new Error('SandboxRepository: @medplum/fhir-router MemoryRepository internals changed; rollback unavailable');
    }
  }

  override async createResource<T extends Resource>(
    resource: T,
    options?: CreateResourceOptions,
    update = false,
  ): Promise<WithId<T>> {
    assertValid(resource);
    const created = await super.createResource(resource, options, update);
    this.deleted.delete(key(created.resourceType, created.id));
    return created;
  }

  override async readResource<T extends Resource>(resourceType: string, id: string): Promise<T> {
    if (this.deleted.has(key(resourceType, id))) throw new OperationOutcomeError(gone);
    return super.readResource<T>(resourceType, id);
  }

  override async deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
    if (this.deleted.has(key(resourceType, id))) throw new OperationOutcomeError(gone);
    await super.deleteResource(resourceType, id, options);
    this.deleted.add(key(resourceType, id));
  }

  /** Runs `callback` atomically: if it throws, every write it made is undone. Nested calls join the outer one. */
  override async withTransaction<TResult>(callback: (repo: this) => Promise<TResult>): Promise<TResult> {
    if (this.inTransaction) return callback(this);
    const snapshot = this.snapshot();
    this.inTransaction = true;
    try {
      return await callback(this);
    } catch (err) {
      this.restore(snapshot);
      throw err;
    } finally {
      this.inTransaction = false;
    }
  }

  private snapshot(): Snapshot {
    const { resources, history } = this as unknown as MemoryInternals;
    return {
      resources: new Map([...resources].map(([type, byId]) => [type, new Map(byId)])),
      history: new Map(
        [...history].map(([type, byId]) => [type, new Map([...byId].map(([id, versions]) => [id, [...versions]]))]),
      ),
      deleted: new Set(this.deleted),
    };
  }

  private restore(snapshot: Snapshot): void {
    const internals = this as unknown as MemoryInternals;
    internals.resources.clear();
    for (const [type, byId] of snapshot.resources) internals.resources.set(type, byId);
    internals.history.clear();
    for (const [type, byId] of snapshot.history) internals.history.set(type, byId);
    this.deleted.clear();
    for (const k of snapshot.deleted) this.deleted.add(k);
  }
}

function key(resourceType: string, id: string): string {
  return `${resourceType}/${id}`;
}

/** Throws an OperationOutcomeError (400) listing the validation errors of `resource`. */
export function assertValid(resource: Resource): void {
  let issues: OperationOutcomeIssue[];
  try {
    issues = validateResource(resource);
  } catch (err) {
    // The validator throws on the first structural problem; its outcome has no id, so it maps to 400.
    if (err instanceof OperationOutcomeError) throw new OperationOutcomeError({ ...err.outcome, id: undefined });
    throw err;
  }
  const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (errors.length > 0) {
    throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: errors });
  }
}
