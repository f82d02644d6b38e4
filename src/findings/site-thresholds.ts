/**
 * Site operating points: the file `volmo eval` writes (thresholds.json) and the service loads through
 * VOLMO_FINDINGS_THRESHOLDS_FILE. Per screening condition a P(TRUE) band, and a P(ICDR >= 2) band for
 * referable DR; they replace the default bands of FindingsConfig for what they name. Pure validation.
 */
import { z } from 'zod';
import { AppError } from '../errors.js';
import type { Band, FindingsConfigOverrides } from './config.js';
import { CONDITIONS, type ConditionId } from './tasks.js';

export const SITE_THRESHOLDS_KIND = 'volmo-findings-thresholds';

const band = z
  .object({ lower: z.number().min(0).max(1), upper: z.number().min(0).max(1) })
  .strict()
  .refine((b) => b.lower <= b.upper, 'lower must not exceed upper');

const conditionIds = CONDITIONS.map((c) => c.id) as [ConditionId, ...ConditionId[]];

const schema = z
  .object({
    kind: z.literal(SITE_THRESHOLDS_KIND),
    version: z.literal(1),
    /** The model the thresholds were measured on (informational; the service warns when it differs). */
    model: z.object({ name: z.string(), version: z.string(), manifestSha256: z.string(), random: z.boolean() }).optional(),
    /** Set when measured with a random-weight test model. */
    banner: z.string().optional(),
    targetSensitivity: z.number().gt(0).max(1).optional(),
    createdAt: z.string().optional(),
    screening: z.partialRecord(z.enum(conditionIds), band).default({}),
    referableDr: band.optional(),
    /** What each threshold achieved on the validation data (informational). */
    evidence: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type SiteThresholds = z.infer<typeof schema>;

/** Validates a parsed thresholds file; throws AppError('config_invalid') naming every problem. */
export function parseSiteThresholds(json: unknown, name: string): SiteThresholds {
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.map(String).join('.') || '(file)'}: ${i.message}`);
  throw new AppError('config_invalid', `${name}: invalid thresholds file:\n  - ${problems.join('\n  - ')}`);
}

/** The FindingsConfig overrides a thresholds file stands for. */
export function siteThresholdOverrides(t: SiteThresholds | undefined): Pick<FindingsConfigOverrides, 'conditionBands' | 'referableDrBand'> {
  if (!t) return {};
  return { conditionBands: t.screening as Partial<Record<ConditionId, Band>>, ...(t.referableDr ? { referableDrBand: t.referableDr } : {}) };
}
