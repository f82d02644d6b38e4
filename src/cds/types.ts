import type { CdsServiceDefinition } from '../../cds-hooks/index.js';
import type { CdsRequest } from './request-schema.js';

export interface CdsCard {
  uuid?: string;
  summary: string;
  detail?: string;
  indicator: 'info' | 'warning' | 'critical';
  source: { label: string; url?: string; icon?: string; topic?: { system?: string; code: string; display?: string } };
  suggestions?: { label: string; uuid?: string; isRecommended?: boolean; actions?: { type: 'create' | 'update' | 'delete'; description: string; resource?: Record<string, unknown>; resourceId?: string }[] }[];
  selectionBehavior?: 'at-most-one' | 'any';
  overrideReasons?: { system?: string; code: string; display: string }[];
  links?: { label: string; url: string; type: 'absolute' | 'smart'; appContext?: string; autolaunchable?: boolean }[];
  extension?: Record<string, unknown>;
}

export interface CdsResponse {
  cards: CdsCard[];
  systemActions?: unknown[];
}

/** Answers one hook call. Implementations hold the use-case; HTTP concerns stay in routes.ts. */
export type HookHandler = (
  request: CdsRequest,
  service: CdsServiceDefinition,
  /** `iss`: the verified issuer of the call's JWT (absent only when unsigned calls are allowed). */
  opts: { signal: AbortSignal; iss?: string },
) => Promise<CdsResponse>;

export interface Coding {
  system?: string;
  code?: string;
  display?: string;
}

export interface FeedbackItem {
  card: string;
  outcome: 'accepted' | 'overridden';
  acceptedSuggestions?: { id: string }[];
  /** CDS Hooks 2.0: a reason Coding and/or the clinician's comment (Epic sends it as `overrideReasons`). */
  overrideReason?: { reason?: Coding; userComment?: string };
  outcomeTimestamp: string;
  /** Client extensions (Epic sends its own override reasons here). */
  extension?: Record<string, unknown>;
}

export interface StoredFeedback extends FeedbackItem {
  service: string;
  receivedAt: string;
}

/** Where card feedback is kept. Idempotent: one record per service + card uuid + outcome (the first one received). */
export interface FeedbackSink {
  /** Records the new items and returns them (items repeating one already recorded are left out). */
  record(serviceId: string, items: FeedbackItem[]): Promise<FeedbackItem[]>;
  /** Records received at or after `since`, oldest first, at most `limit`. */
  list(opts: { since?: Date; limit: number }): Promise<StoredFeedback[]>;
}
