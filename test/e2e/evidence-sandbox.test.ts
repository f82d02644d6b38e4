/**
 * The whole evidence pipeline (FHIR context + ImagingStudy/Endpoint/Media + DICOMweb or attachments +
 * image checks) against the real sandbox servers, with and without a PACS, for every fixture patient.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVIDENCE_PREFETCH } from '../../cds-hooks/prefetch.js';
import { gatherEvidence } from '../../src/analysis/gather-evidence.js';
import type { EvidenceBundle } from '../../src/evidence/types.js';
import { HttpFhirClient } from '../../src/fhir/http-client.js';
import { fhirAuthorizationTokenSource } from '../../src/fhir/token-source.js';
import { silentLogger } from '../../src/log.js';
import { createGuardedFetch } from '../../src/net/guarded-fetch.js';
import { ehrToken, fixturePatientId } from '../../src/sandbox/ehr-access.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { loadSandboxSettings } from '../../src/sandbox/settings.js';
import { startSandbox } from '../../src/sandbox/index.js';

const SCOPES = ['Patient', 'Observation', 'Condition', 'ImagingStudy', 'Endpoint', 'Media', 'Binary', 'DocumentReference', 'MedicationRequest', 'MedicationStatement'];

async function harness(pacs: 'orthanc' | 'none') {
  const env = {
    VOLMO_SANDBOX_FHIR_PORT: '0',
    VOLMO_SANDBOX_AUTH_PORT: '0',
    VOLMO_SANDBOX_EHR_PORT: '0',
    VOLMO_SANDBOX_PACS_PORT: '0',
    VOLMO_SANDBOX_PACS: pacs,
    VOLMO_SANDBOX_STATE_DIR: mkdtempSync(join(tmpdir(), 'volmo-ev-')),
  };
  const sb = await startSandbox({ settings: loadSandboxSettings(env), publicUrl: 'http://127.0.0.1:8080', log: silentLogger() });
  const tok = await ehrToken(sb.fhirBaseUrl, sb.ehr, SCOPES.map((r) => `system/${r}.rs`));
  const allow = [sb.fhirBaseUrl, ...(sb.dicomWebUrl ? [sb.dicomWebUrl] : [])];
  const gf = createGuardedFetch({ allow, timeoutMs: 10_000 });
  const fhir = new HttpFhirClient({
    baseUrl: sb.fhirBaseUrl,
    fetch: gf,
    tokens: fhirAuthorizationTokenSource({ access_token: tok.access_token, token_type: 'Bearer', expires_in: 300, scope: tok.scope, subject: 'volmo' }),
  });
  const ids = new Map<string, string>();
  for (const p of listFixturePatients()) ids.set(p.key, await fixturePatientId(sb.fhirBaseUrl, tok.access_token, p.mrn));
  const gather = (key: string, prefetch?: Record<string, unknown>) =>
    gatherEvidence({ patientId: ids.get(key)!, fhir, prefetch }, { fetch: gf, pacs: sb.dicomWebUrl ? { baseUrl: sb.dicomWebUrl } : undefined });
  const prefetchFor = async (key: string, keys: string[]) => {
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const q = (EVIDENCE_PREFETCH as Record<string, string>)[k]!.replaceAll('{{context.patientId}}', ids.get(key)!);
      const res = await fetch(`${sb.fhirBaseUrl}/${q}`, { headers: { authorization: `Bearer ${tok.access_token}` } });
      out[k] = await res.json();
    }
    return out;
  };
  return { sb, gf, gather, prefetchFor, close: async () => { gf.close(); await sb.stop(); } };
}

/** A PHI-free summary of the images that should not depend on how the data was obtained. */
function imageSummary(b: EvidenceBundle) {
  const all = [...b.images.right, ...b.images.left, ...b.images.unknown];
  return all.map((i) => `${i.eye}:${i.modality}:${i.gradability.status}:${i.contentHash.slice(0, 12)}`).sort();
}

function expectedFor(key: string) {
  const p = listFixturePatients().find((f) => f.key === key)!;
  return p.dicom.map((d) => ({ eye: d.eye === 'R' ? 'right' : d.eye === 'L' ? 'left' : 'unknown', modality: d.modality, expect: d.expect }));
}

for (const pacs of ['orthanc', 'none'] as const) {
  describe(`evidence from the sandbox (${pacs === 'orthanc' ? 'DICOMweb from Orthanc' : 'no PACS: FHIR Media attachments'})`, () => {
    let h: Awaited<ReturnType<typeof harness>>;
    beforeAll(async () => {
      h = await harness(pacs);
    });
    afterAll(async () => h?.close());

    it.each(listFixturePatients().map((p) => p.key))('fixture %s yields the expected images', async (key) => {
      const b = await h.gather(key);
      const images = [...b.images.right, ...b.images.left, ...b.images.unknown];
      for (const exp of expectedFor(key)) {
        if (exp.expect === 'corrupt') {
          expect(b.problems.some((p) => p.kind === 'image_rejected')).toBe(true);
          continue;
        }
        // OCT is not gated (the gradability gate is for fundus photographs): it arrives 'unchecked'.
        const status = exp.modality === 'OPT' && exp.expect === 'gradable' ? 'unchecked' : exp.expect;
        const match = images.find((i) => i.eye === exp.eye && i.modality === exp.modality && i.gradability.status === status);
        expect(match, `${key}: ${exp.eye} ${exp.modality} ${exp.expect}`).toBeDefined();
        if (status !== 'ungradable') expect(match!.bytes?.length).toBeGreaterThan(1000);
        else expect(match!.bytes).toBeUndefined();
      }
      expect(images.length).toBe(expectedFor(key).filter((e) => e.expect !== 'corrupt').length);
      expect(b.caseText).toContain('[PATIENT CLINICAL PROFILE]');
      expect(b.problems.filter((p) => p.kind === 'pacs_unreachable')).toEqual([]);
    });

    it('complete, partial and no prefetch give the same bundle', async () => {
      const keys = Object.keys(EVIDENCE_PREFETCH);
      const none = await h.gather('diabetic');
      const complete = await h.gather('diabetic', await h.prefetchFor('diabetic', keys));
      const partial = await h.gather('diabetic', await h.prefetchFor('diabetic', ['patient', 'imagingStudies']));
      for (const other of [complete, partial]) {
        expect(imageSummary(other)).toEqual(imageSummary(none));
        expect(other.patient).toEqual(none.patient);
        expect(other.caseText).toEqual(none.caseText);
      }
      expect(complete.sources.fetched).toEqual([]);
      expect(none.sources.prefetchUsed).toEqual([]);
    });
  });
}
