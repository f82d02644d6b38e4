/** EvidenceBundle -> the findings layer's ExamContext, plus the model-ready bytes of each usable image. Pure. */
import type { EvidenceBundle, EvidenceImage, PatientContext } from '../evidence/types.js';
import type { ClinicalFacts, ExamContext, ImageRecord } from '../findings/types.js';
import { reasonInWords } from '../imaging/rejection.js';

export interface ExamInputs {
  context: ExamContext;
  /** Model-ready bytes by ImageRecord.id (gradable or unchecked images only). */
  pixels: Map<string, Uint8Array>;
}

function eyeOf(i: EvidenceImage): ImageRecord['eye'] {
  return i.eye === 'right' || i.eye === 'left' ? i.eye : 'unknown';
}

export function toExamInputs(evidence: EvidenceBundle, ids: { patientId: string; encounterId?: string }, now: Date): ExamInputs {
  const all = [...evidence.images.right, ...evidence.images.left, ...evidence.images.unknown];
  const images: ImageRecord[] = [];
  const pixels = new Map<string, Uint8Array>();
  for (const img of all) {
    if (img.modality !== 'OP' && img.modality !== 'OPT') continue;
    const id = `img-${img.contentHash.slice(0, 16)}`;
    const gradable = img.gradability.status !== 'ungradable';
    images.push({
      id,
      eye: eyeOf(img),
      modality: img.modality,
      source: img.provenance.fhirRef ?? img.provenance.url ?? 'unknown',
      contentHash: `sha256:${img.contentHash}`,
      gradability: gradable ? { gradable: true } : { gradable: false, reason: img.gradability.reasons.map(reasonInWords).join('; ') || 'ungradable' },
    });
    if (gradable && img.bytes) pixels.set(id, img.bytes);
  }
  const acquired = all.map((i) => i.acquired).filter((d): d is string => Boolean(d)).sort();
  const studies = [...new Set(all.map((i) => i.provenance.fhirRef).filter((r): r is string => Boolean(r?.startsWith('ImagingStudy/'))))];
  return {
    context: {
      patient: `Patient/${ids.patientId}`,
      encounter: ids.encounterId ? `Encounter/${ids.encounterId}` : undefined,
      effectiveDateTime: acquired.at(-1) ?? now.toISOString(),
      imagingStudies: studies,
      images,
      notes: evidence.patient.notes.map((n) => n.ref),
      caseText: evidence.caseText,
      facts: clinicalFacts(evidence.patient),
    },
    pixels,
  };
}

/** The measurements plan rules depend on (HbA1c, blood pressure, IOP and visual acuity per eye). */
export function clinicalFacts(p: PatientContext): ClinicalFacts {
  const perEye = (r?: number, l?: number) => (r === undefined && l === undefined ? undefined : { ...(r !== undefined ? { right: r } : {}), ...(l !== undefined ? { left: l } : {}) });
  const iop = perEye(p.iop.right?.mmHg, p.iop.left?.mmHg);
  const logMar = perEye(p.visualAcuity.right?.logMar, p.visualAcuity.left?.logMar);
  // A date goes only beside a value that is carried (an acuity kept as text has no logMAR, so no date either).
  const dated = (value: unknown, date: string | undefined) => (value !== undefined && date ? date : undefined);
  const datesPerEye = (r?: string, l?: string) => (r === undefined && l === undefined ? undefined : { ...(r ? { right: r } : {}), ...(l ? { left: l } : {}) });
  const hba1cAt = dated(p.hba1c, p.hba1c?.effective);
  const bpAt = dated(p.bloodPressure, p.bloodPressure?.effective);
  const iopAt = datesPerEye(dated(p.iop.right?.mmHg, p.iop.right?.effective), dated(p.iop.left?.mmHg, p.iop.left?.effective));
  const vaAt = datesPerEye(dated(p.visualAcuity.right?.logMar, p.visualAcuity.right?.effective), dated(p.visualAcuity.left?.logMar, p.visualAcuity.left?.effective));
  const measuredAt = { ...(hba1cAt ? { hba1c: hba1cAt } : {}), ...(bpAt ? { bloodPressure: bpAt } : {}), ...(iopAt ? { iop: iopAt } : {}), ...(vaAt ? { logMar: vaAt } : {}) };
  return {
    ...(p.hba1c ? { hba1cPercent: p.hba1c.percent } : {}),
    ...(p.bloodPressure ? { bloodPressure: { systolicMmHg: p.bloodPressure.systolicMmHg, diastolicMmHg: p.bloodPressure.diastolicMmHg } } : {}),
    ...(iop ? { iopMmHg: iop } : {}),
    ...(logMar ? { logMar } : {}),
    ...(Object.keys(measuredAt).length ? { measuredAt } : {}),
  };
}
