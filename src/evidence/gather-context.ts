/**
 * gatherClinicalContext: prefetch first, the FHIR server for what is missing, then pure extraction.
 * Data gaps and upstream failures become `problems`; it throws only when the caller aborts.
 */
import type { Condition, DocumentReference, MedicationRequest, MedicationStatement, Observation, Patient, Resource } from 'fhir/r4.js';
import type { FhirClient } from '../fhir/client.js';
import { extractMeasurements } from './observation-extract.js';
import { readNotes, type NoteLimits } from './notes.js';
import { fillTemplate, resolveQuery, type ResolvedQuery } from './prefetch.js';
import { demographics, summariseConditions, summariseEyeMedications } from './record-extract.js';
import type { PatientContext, Problem } from './types.js';
import { EVIDENCE_PREFETCH } from '../../cds-hooks/prefetch.js';

/**
 * The queries behind each prefetch key: the templates published in cds-hooks/prefetch.ts, so prefetched
 * and self-fetched data are the same.
 */
export const CONTEXT_QUERIES = {
  patient: EVIDENCE_PREFETCH.patient,
  conditions: EVIDENCE_PREFETCH.conditions,
  observations: EVIDENCE_PREFETCH.observations,
  medications: EVIDENCE_PREFETCH.medications,
  medicationStatements: EVIDENCE_PREFETCH.medicationStatements,
  notes: EVIDENCE_PREFETCH.notes,
} as const;

export type ContextKey = keyof typeof CONTEXT_QUERIES;

export interface GatherOptions extends NoteLimits {
  readonly patientId: string;
  readonly encounterId?: string;
  readonly prefetch?: Readonly<Record<string, unknown>> | null;
  readonly signal?: AbortSignal;
  /** Reference time for ages (default now). */
  readonly now?: Date;
  /** Override the query per key (e.g. a site's own prefetch templates). */
  readonly queries?: Partial<Readonly<Record<ContextKey, string>>>;
}

export interface ClinicalContextResult {
  readonly patient: PatientContext;
  readonly problems: readonly Problem[];
  readonly sources: { readonly prefetchUsed: readonly string[]; readonly fetched: readonly string[] };
  readonly fhirMs: number;
}

const of = <T extends Resource>(r: ResolvedQuery, type: T['resourceType']) => r.resources.filter((x): x is T => x.resourceType === type);

export async function gatherClinicalContext(fhir: FhirClient | undefined, opts: GatherOptions): Promise<ClinicalContextResult> {
  const t0 = performance.now();
  const ctx = { patientId: opts.patientId, encounterId: opts.encounterId };
  const keys = Object.keys(CONTEXT_QUERIES) as ContextKey[];
  const resolved = await Promise.all(
    keys.map((key) =>
      resolveQuery({
        key,
        query: fillTemplate(opts.queries?.[key] ?? CONTEXT_QUERIES[key], ctx),
        patientId: opts.patientId,
        prefetch: opts.prefetch,
        fhir,
        signal: opts.signal,
        severity: key === 'patient' ? 'error' : 'warning',
        search: key === 'notes' ? { maxPages: 1, maxResources: 20 } : { maxPages: 5, maxResources: 500 },
      }),
    ),
  );
  opts.signal?.throwIfAborted();
  const by = Object.fromEntries(keys.map((k, i) => [k, resolved[i]])) as Record<ContextKey, ResolvedQuery>;
  const problems: Problem[] = resolved.flatMap((r) => r.problems);

  const patientResource = of<Patient>(by.patient, 'Patient')[0];
  const { measurements, problems: obsProblems } = extractMeasurements(of<Observation>(by.observations, 'Observation'));
  const notes = await readNotes(of<DocumentReference>(by.notes, 'DocumentReference'), fhir, { maxNotes: opts.maxNotes, maxChars: opts.maxChars, maxBytes: opts.maxBytes, encounterId: opts.encounterId, signal: opts.signal });
  opts.signal?.throwIfAborted();
  problems.push(...obsProblems, ...notes.problems);

  const patient: PatientContext = {
    ...demographics(patientResource, opts.now ?? new Date()),
    conditions: summariseConditions(of<Condition>(by.conditions, 'Condition')),
    ...measurements,
    medications: summariseEyeMedications(
      [...of<MedicationRequest>(by.medications, 'MedicationRequest'), ...of<MedicationStatement>(by.medicationStatements, 'MedicationStatement')],
      [...by.medications.resources, ...by.medicationStatements.resources],
    ),
    notes: notes.notes,
  };
  problems.push(...missingData(patient, by));
  return {
    patient,
    problems,
    sources: {
      prefetchUsed: keys.filter((k) => by[k].origin === 'prefetch' || by[k].origin === 'prefetch+fetched'),
      fetched: keys.filter((k) => by[k].origin === 'fetched' || by[k].origin === 'prefetch+fetched'),
    },
    fhirMs: Math.round(performance.now() - t0),
  };
}

/** Informational problems for gaps a reader of the case should know about (only when the query itself worked). */
function missingData(p: PatientContext, by: Record<ContextKey, ResolvedQuery>): Problem[] {
  const out: Problem[] = [];
  const gap = (key: ContextKey, what: string, missing: boolean) => {
    if (missing && by[key].origin !== 'none') out.push({ kind: 'missing_data', severity: 'info', source: `${key}:${what}`, message: `no ${what} recorded` });
  };
  gap('patient', 'age', p.ageYears === undefined && by.patient.resources.length > 0);
  gap('observations', 'hba1c', p.hba1c === undefined && p.conditions.some((c) => c.category === 'diabetes'));
  gap('observations', 'blood-pressure', p.bloodPressure === undefined);
  gap('observations', 'visual-acuity', !p.visualAcuity.right && !p.visualAcuity.left);
  gap('observations', 'iop', !p.iop.right && !p.iop.left);
  return out;
}
