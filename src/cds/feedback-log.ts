import type { Logger } from '../log.js';
import type { FeedbackItem, FeedbackSink, StoredFeedback } from './types.js';

/**
 * Card feedback in memory, bounded (the oldest record goes first). Idempotent by service + card uuid +
 * outcome: EHRs resend feedback (batches, retries) and the first answer is the clinician's decision.
 * The durable store (issue 11) implements the same port.
 */
export class MemoryFeedbackSink implements FeedbackSink {
  readonly items = new Map<string, StoredFeedback>();

  constructor(
    private readonly log: Logger,
    private readonly maxItems = 10_000,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async record(serviceId: string, items: FeedbackItem[]): Promise<FeedbackItem[]> {
    const recorded: FeedbackItem[] = [];
    for (const f of items) {
      const key = `${serviceId}|${f.card}|${f.outcome}`;
      if (this.items.has(key)) continue;
      if (this.items.size >= this.maxItems) this.items.delete(this.items.keys().next().value as string);
      this.items.set(key, { ...f, service: serviceId, receivedAt: this.now().toISOString() });
      recorded.push(f);
    }
    this.log.info({ service: serviceId, recorded: recorded.length, duplicates: items.length - recorded.length }, 'card feedback recorded');
    return recorded;
  }

  async list({ since, limit }: { since?: Date; limit: number }): Promise<StoredFeedback[]> {
    const from = since?.toISOString() ?? '';
    return [...this.items.values()].filter((f) => f.receivedAt >= from).slice(0, limit);
  }
}
