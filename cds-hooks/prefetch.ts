/**
 * Prefetch templates shared by the services. The same keys are what an Epic or Oracle Health analyst
 * configures by hand (Epic does not read discovery): see docs/deployment.md.
 */
export const EVIDENCE_PREFETCH = {
  patient: 'Patient/{{context.patientId}}',
  conditions: 'Condition?patient={{context.patientId}}&clinical-status=active',
  observations:
    'Observation?patient={{context.patientId}}&code=http://loinc.org|4548-4,http://loinc.org|17856-6,http://loinc.org|85354-9,http://loinc.org|8480-6,http://loinc.org|8462-4,http://loinc.org|55284-4,http://loinc.org|79892-6,http://loinc.org|79893-4,http://loinc.org|98499-7,http://loinc.org|98498-9,http://loinc.org|79880-1,http://loinc.org|79881-9,http://loinc.org|79882-7,http://loinc.org|79883-5,http://loinc.org|59261-8&_sort=-date&_count=50',
  imagingStudies: 'ImagingStudy?patient={{context.patientId}}&_sort=-started&_count=10&_include=ImagingStudy:endpoint',
  /** Images exposed as FHIR Media (Epic's "Media (Study)"; the sandbox without a PACS). */
  media: 'Media?patient={{context.patientId}}&_count=20',
  medications: 'MedicationRequest?patient={{context.patientId}}&status=active',
  /** The medication list: many EHRs keep eye drops as MedicationStatement. */
  medicationStatements: 'MedicationStatement?patient={{context.patientId}}&status=active',
  notes: 'DocumentReference?patient={{context.patientId}}&_sort=-date&_count=5',
} as const;
