/** The content of eval.json, pure: the summary with what it was measured on and the published figures beside it. */
import type { Band } from '../findings/config.js';
import type { SiteThresholds } from '../findings/site-thresholds.js';
import { TASK_SET_VERSION } from '../findings/tasks.js';
import type { ModelInfo } from '../model/runtime/types.js';
import type { Summary, SummaryOptions } from './summary.js';
import type { Dataset } from './types.js';

export const EVAL_TEST_MODEL_BANNER = 'TEST MODEL WITH RANDOM WEIGHTS — numbers are mechanics, not accuracy';

/** Published figures from other populations and reference standards: context, not a comparison. */
export const PUBLISHED_FIGURES = [
  {
    system: 'IDx-DR',
    source: 'Abràmoff et al., npj Digital Medicine 2018;1:39 (pivotal trial, adults with diabetes in US primary care)',
    measure: 'more-than-mild DR (ETDRS level 35 or worse, or macular edema)',
    sensitivity: 0.872,
    specificity: 0.907,
  },
  {
    system: 'VOLMO-2B',
    source: 'arXiv 2603.23953 (abstract)',
    measure: 'average F1 over 12 eye conditions',
    f1: 0.874,
  },
] as const;

export const PUBLISHED_NOTE = 'Published figures from other populations, images and reference standards; they are not comparable with this site\'s numbers.';

export interface SiteOperatingPoints {
  file: string;
  targetSensitivity: number;
  thresholds: SiteThresholds;
  /** The service's metrics on this dataset with the file in effect (its own decision code, no bootstrap). */
  withThresholds: Pick<Summary, 'screening' | 'referableDr'>;
}

export interface EvalReport {
  kind: 'volmo-eval';
  version: 1;
  banner: string | null;
  generatedAt: string;
  model: Pick<ModelInfo, 'name' | 'version' | 'manifestSha256' | 'executionProvider' | 'dtype' | 'random'>;
  dataset: { layout: Dataset['layout']; images: number; notes: string[] };
  settings: SummaryOptions & { taskSetVersion: string; maxTiles: number; bands: { source: string; screening: Band; conditions: Record<string, Band>; referableDr: Band } };
  summary: Summary;
  published: typeof PUBLISHED_FIGURES;
  publishedNote: string;
  siteOperatingPoints: SiteOperatingPoints;
}

export interface ReportInput {
  info: ModelInfo;
  dataset: Dataset;
  options: SummaryOptions;
  maxTiles: number;
  bands: EvalReport['settings']['bands'];
  summary: Summary;
  siteOperatingPoints: SiteOperatingPoints;
  generatedAt: string;
}

export function buildReport(r: ReportInput): EvalReport {
  const { name, version, manifestSha256, executionProvider, dtype, random } = r.info;
  return {
    kind: 'volmo-eval',
    version: 1,
    banner: random ? EVAL_TEST_MODEL_BANNER : null,
    generatedAt: r.generatedAt,
    model: { name, version, manifestSha256, executionProvider, dtype, random },
    dataset: { layout: r.dataset.layout, images: r.dataset.items.length, notes: r.dataset.notes },
    settings: { ...r.options, taskSetVersion: TASK_SET_VERSION, maxTiles: r.maxTiles, bands: r.bands },
    summary: r.summary,
    published: PUBLISHED_FIGURES,
    publishedNote: PUBLISHED_NOTE,
    siteOperatingPoints: r.siteOperatingPoints,
  };
}
