/** Remembers JWT ids (`jti`) until they expire, so a captured hook call cannot be replayed. */
export interface ReplayCache {
  /** Returns false if the id was already seen (a replay); otherwise records it until `expiresAtMs`. */
  checkAndRemember(id: string, expiresAtMs: number): Promise<boolean>;
}

/** In-process implementation; a deployment with several replicas uses a shared store instead. */
export class MemoryReplayCache implements ReplayCache {
  private readonly seen = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now, private readonly maxEntries = 100_000) {}

  async checkAndRemember(id: string, expiresAtMs: number): Promise<boolean> {
    const now = this.now();
    if (this.seen.size >= this.maxEntries) for (const [k, until] of this.seen) if (until <= now) this.seen.delete(k);
    const until = this.seen.get(id);
    if (until !== undefined && until > now) return false;
    // Still full of unexpired ids: refuse (fail closed) rather than forget one and reopen its replay window.
    if (this.seen.size >= this.maxEntries) return false;
    this.seen.set(id, expiresAtMs);
    return true;
  }
}
