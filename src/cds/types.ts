import type { CdsServiceDefinition } from '../../cds-hooks/index.js';
import type { CdsRequest } from './request-schema.js';

export interface CdsCard {
  uuid?: string;
  summary: string;
  detail?: string;
  indicator: 'info' | 'warning' | 'critical';
  source: { label: string; url?: string; icon?: string; topic?: { system?: string; code: string; display?: string } };
  suggestions?: unknown[];
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

export interface FeedbackItem {
  card: string;
  outcome: 'accepted' | 'overridden';
  acceptedSuggestions?: { id: string }[];
  overrideReason?: unknown;
  outcomeTimestamp: string;
}

export interface FeedbackSink {
  record(serviceId: string, items: FeedbackItem[]): Promise<void>;
}
