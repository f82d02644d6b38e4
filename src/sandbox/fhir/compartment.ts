/** Patient-compartment membership and search restriction, using the R4 Patient CompartmentDefinition. */
import '../../platform/websocket-shim.js';
import { getSearchParameter, matchesSearchRequest, Operator, parseSearchRequest } from '@medplum/core';
import type { SearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { patientCompartmentParams } from './definitions.js';

/** Compartment parameters of `resourceType` that the search index knows; [] = not patient data. */
function linkParams(resourceType: string): string[] {
  return (patientCompartmentParams().get(resourceType) ?? []).filter((p) => getSearchParameter(resourceType, p));
}

/** True when `resource` is `patientId` or links to it; resources that are not patient data always pass. */
export function inPatientCompartment(resource: Resource, patientId: string): boolean {
  if (resource.resourceType === 'Patient') return resource.id === patientId;
  const params = linkParams(resource.resourceType);
  if (params.length === 0) return true;
  return params.some((code) =>
    matchesSearchRequest(resource, {
      resourceType: resource.resourceType,
      filters: [{ code, operator: Operator.EQUALS, value: `Patient/${patientId}` }],
    }),
  );
}

/**
 * Adds a filter limiting `search` to `patientId`'s compartment: `_id` for Patient, else the type's
 * `patient` parameter when it is a compartment link, else its first compartment parameter.
 */
export function restrictToPatient(search: SearchRequest, patientId: string): SearchRequest {
  const type = search.resourceType;
  const filters = [...(search.filters ?? [])];
  if (type === 'Patient') {
    filters.push({ code: '_id', operator: Operator.EQUALS, value: patientId });
  } else {
    const params = linkParams(type);
    if (params.length === 0) return search;
    const code = getSearchParameter(type, 'patient') ? 'patient' : (params[0] as string);
    filters.push({ code, operator: Operator.EQUALS, value: `Patient/${patientId}` });
  }
  return { ...search, filters };
}

/** Adds the filters of a v2 scope constraint (`category=...|vital-signs`) to `search`. */
export function addConstraint(search: SearchRequest, constraint: string): SearchRequest {
  const extra = parseSearchRequest(search.resourceType, Object.fromEntries(new URLSearchParams(constraint)));
  return { ...search, filters: [...(search.filters ?? []), ...(extra.filters ?? [])] };
}

/** Whether `resource` satisfies a v2 scope constraint. */
export function matchesConstraint(resource: Resource, constraint: string): boolean {
  const req = parseSearchRequest(resource.resourceType, Object.fromEntries(new URLSearchParams(constraint)));
  return matchesSearchRequest(resource, req);
}
