import { EVIDENCE_PREFETCH } from './prefetch.js';
import type { CdsServiceDefinition } from './types.js';

export const eyeSummaryPatientView: CdsServiceDefinition = {
  id: 'volmo-eye-summary-patient-view',
  hook: 'patient-view',
  title: 'VOLMO ophthalmic AI summary',
  description:
    'On opening the chart, summarises AI findings on the patient’s retinal images (fundus photographs, OCT) and links to the draft report in the VOLMO SMART app. AI output; not a diagnosis.',
  prefetch: EVIDENCE_PREFETCH,
};
