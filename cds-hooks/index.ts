/** The catalogue of CDS services this product offers (discovery document source). */
import { eyeExamOrderSelect } from './eye-exam-order-select.js';
import { eyeExamOrderSign } from './eye-exam-order-sign.js';
import { eyeSummaryPatientView } from './eye-summary-patient-view.js';
import type { CdsServiceDefinition } from './types.js';

export type { CdsServiceDefinition } from './types.js';

export const CDS_SERVICES: readonly CdsServiceDefinition[] = [eyeExamOrderSign, eyeExamOrderSelect, eyeSummaryPatientView];
