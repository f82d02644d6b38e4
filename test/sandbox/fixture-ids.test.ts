/** The sandbox FHIR server keeps fixture ids stable across restarts (issue 11), as a real EHR does. */
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { startFhirServer } from '../../src/sandbox/fhir-server.js';
import { loadFixtureBundles } from '../../src/sandbox/fixtures.js';

/** Starts a fresh sandbox FHIR server, loads the fixtures, and lists every resource's reference. */
async function idsAfterStart(): Promise<string[]> {
  const fhir = await startFhirServer({ authIssuer: 'http://127.0.0.1:9/issuer', log: silentLogger(), requireAuth: false });
  try {
    for (const b of loadFixtureBundles({ attachments: true })) await fhir.loadBundle(b);
    const refs: string[] = [];
    for (const type of ['Patient', 'Encounter', 'ImagingStudy', 'Media', 'Observation', 'Condition']) {
      const res = (await (await fetch(`${fhir.baseUrl}/${type}?_count=1000`, { headers: { accept: 'application/fhir+json' } })).json()) as Bundle;
      refs.push(...(res.entry ?? []).map((e) => `${(e.resource as Resource).resourceType}/${(e.resource as Resource).id}`));
    }
    return refs.sort();
  } finally {
    await fhir.close();
  }
}

describe('sandbox fixture ids', () => {
  it('are the same after a restart, and references between fixture resources resolve', async () => {
    const [first, second] = [await idsAfterStart(), await idsAfterStart()];
    expect(first.filter((r) => r.startsWith('Patient/'))).toHaveLength(7);
    expect(first.filter((r) => r.startsWith('Media/')).length).toBeGreaterThan(0);
    expect(second).toEqual(first);
    const fhir = await startFhirServer({ authIssuer: 'http://127.0.0.1:9/issuer', log: silentLogger(), requireAuth: false });
    try {
      for (const b of loadFixtureBundles({ attachments: true })) await fhir.loadBundle(b);
      const media = (await (await fetch(`${fhir.baseUrl}/Media?_count=1`, { headers: { accept: 'application/fhir+json' } })).json()) as Bundle;
      const subject = (media.entry![0]!.resource as { subject: { reference: string } }).subject.reference;
      expect(first).toContain(subject); // a urn:uuid reference became the stable Patient/<id>
    } finally {
      await fhir.close();
    }
  });
});
