/** Builds a CDS Hooks prefetch object the way an EHR would, by running each template against a FhirClient. */
import type { Resource } from 'fhir/r4.js';
import { parseRelativeQuery, type FhirClient } from '../../../src/fhir/client.js';
import { CONTEXT_QUERIES, type ContextKey } from '../../../src/evidence/gather-context.js';
import { fillTemplate } from '../../../src/evidence/prefetch.js';

export async function buildPrefetch(fhir: FhirClient, patientId: string, keys: readonly ContextKey[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const q = fillTemplate(CONTEXT_QUERIES[key], { patientId })!;
    const { resourceType, params } = parseRelativeQuery(q);
    if (resourceType.includes('/')) {
      const [t, id] = resourceType.split('/');
      out[key] = await fhir.read(t, id).catch(() => null);
    } else {
      const res = await fhir.search(resourceType, params);
      out[key] = { resourceType: 'Bundle', type: 'searchset', total: res.resources.length, entry: res.resources.map((r: Resource) => ({ resource: r, search: { mode: 'match' } })) };
    }
  }
  return out;
}
