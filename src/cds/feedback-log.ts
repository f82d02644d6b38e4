import type { Logger } from '../log.js';
import type { FeedbackItem, FeedbackSink } from './types.js';

/** Records card feedback idempotently (the same card may be reported more than once). */
export class MemoryFeedbackSink implements FeedbackSink {
  readonly items = new Map<string, FeedbackItem & { service: string }>();

  constructor(private readonly log: Logger, private readonly maxItems = 10_000) {}

  async record(serviceId: string, items: FeedbackItem[]): Promise<void> {
    for (const f of items) {
      const key = `${serviceId}|${f.card}|${f.outcome}|${f.outcomeTimestamp}`;
      if (!this.items.has(key) && this.items.size >= this.maxItems) this.items.delete(this.items.keys().next().value as string);
      this.items.set(key, { ...f, service: serviceId });
    }
    this.log.info({ service: serviceId, count: items.length, outcomes: items.map((i) => i.outcome) }, 'card feedback recorded');
  }
}
