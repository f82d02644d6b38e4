import { EVIDENCE_PREFETCH } from './prefetch.js';
import type { CdsServiceDefinition } from './types.js';

export const eyeExamOrderSelect: CdsServiceDefinition = {
  id: 'volmo-eye-exam-order-select',
  hook: 'order-select',
  title: 'VOLMO ophthalmic AI context while ordering',
  description:
    'When an eye-related order is selected, shows what the VOLMO-2B model found on the patient’s recent retinal images (if already analysed) so the order can be reconsidered. AI output; not a diagnosis.',
  prefetch: EVIDENCE_PREFETCH,
};
