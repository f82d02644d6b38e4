import { EVIDENCE_PREFETCH } from './prefetch.js';
import type { CdsServiceDefinition } from './types.js';

export const eyeExamOrderSign: CdsServiceDefinition = {
  id: 'volmo-eye-exam-order-sign',
  hook: 'order-sign',
  title: 'VOLMO ophthalmic AI review at order signing',
  description:
    'When eye-related orders are signed, screens the patient’s recent fundus photographs and OCT with the VOLMO-2B model for 12 eye conditions and diabetic retinopathy stage, and offers a draft report for clinician review. AI output; not a diagnosis.',
  prefetch: EVIDENCE_PREFETCH,
};
