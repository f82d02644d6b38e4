/**
 * A site's operating points from an evaluation, pure: for each condition (and referable DR) with reference
 * positives, the band whose `lower` is the threshold found for the target sensitivity. The service calls
 * P < lower negative and P >= lower positive or indeterminate (both refer), so on these cases it flags at
 * least the target share of positives; `upper` keeps the band in use unless the threshold lies above it.
 */
import type { Band, FindingsConfig } from '../findings/config.js';
import { SITE_THRESHOLDS_KIND, type SiteThresholds } from '../findings/site-thresholds.js';
import type { ConditionId } from '../findings/tasks.js';
import type { ModelIdentity } from '../findings/types.js';
import type { OperatingPoint } from './metrics.js';
import { EVAL_TEST_MODEL_BANNER } from './report.js';
import type { Summary } from './summary.js';

/** Few reference positives make a threshold unstable: below this count the file says so. */
export const FEW_POSITIVES = 30;

function bandFor(op: OperatingPoint, current: Band): Band {
  return { lower: op.threshold, upper: Math.max(op.threshold, current.upper) };
}

function evidenceOf(op: OperatingPoint): Record<string, unknown> {
  return { ...op, ...(op.positives < FEW_POSITIVES ? { warning: `only ${op.positives} reference positives: the threshold is unstable` } : {}) };
}

export function siteThresholds(summary: Summary, current: FindingsConfig, model: ModelIdentity, targetSensitivity: number, createdAt: string): SiteThresholds {
  const screening: Partial<Record<ConditionId, Band>> = {};
  const evidence: Record<string, unknown> = {};
  for (const c of summary.screening) {
    if (!c.operatingPoint) continue;
    screening[c.condition] = bandFor(c.operatingPoint, current.conditionBands?.[c.condition] ?? current.screeningBand);
    evidence[c.condition] = evidenceOf(c.operatingPoint);
  }
  const ref = summary.referableDr.operatingPoint;
  if (ref) evidence.referableDr = evidenceOf(ref);
  return {
    kind: SITE_THRESHOLDS_KIND,
    version: 1,
    model: { name: model.name, version: model.version, manifestSha256: model.manifestSha256, random: model.random },
    ...(model.random ? { banner: EVAL_TEST_MODEL_BANNER } : {}),
    targetSensitivity,
    createdAt,
    screening,
    ...(ref ? { referableDr: bandFor(ref, current.referableDrBand) } : {}),
    evidence,
  };
}
