/**
 * Short-lived server-side records for the SMART launch: pending authorizations keyed by OAuth `state`
 * and app sessions keyed by an opaque session id. The interface is async so a shared store (Redis,
 * PostgreSQL) can replace the in-memory one when several replicas run; `take` must then be atomic.
 */

export interface KeyedStore<T> {
  /** false when the store is full of live entries: live entries are never evicted (a flood cannot cancel real sign-ins). */
  put(key: string, value: T, ttlMs: number): Promise<boolean>;
  get(key: string): Promise<T | undefined>;
  /** Reads and deletes in one step (one-time values such as OAuth state). */
  take(key: string): Promise<T | undefined>;
}

interface Slot<T> {
  value: T;
  expiresAt: number;
}

/** In-memory store: entries expire after their TTL; at `maxEntries` live entries, `put` refuses (expired ones are swept first). */
export class MemoryKeyedStore<T> implements KeyedStore<T> {
  private readonly slots = new Map<string, Slot<T>>();

  constructor(private readonly opts: { maxEntries: number; now?: () => number }) {
    if (!Number.isInteger(opts.maxEntries) || opts.maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private live(key: string): Slot<T> | undefined {
    const s = this.slots.get(key);
    if (s && s.expiresAt <= this.now()) {
      this.slots.delete(key);
      return undefined;
    }
    return s;
  }

  async put(key: string, value: T, ttlMs: number): Promise<boolean> {
    const now = this.now();
    this.slots.delete(key);
    if (this.slots.size >= this.opts.maxEntries) for (const [k, s] of this.slots) if (s.expiresAt <= now) this.slots.delete(k);
    if (this.slots.size >= this.opts.maxEntries) return false;
    this.slots.set(key, { value, expiresAt: now + ttlMs });
    return true;
  }

  async get(key: string): Promise<T | undefined> {
    return this.live(key)?.value;
  }

  async take(key: string): Promise<T | undefined> {
    const s = this.live(key);
    this.slots.delete(key);
    return s?.value;
  }

  get size(): number {
    return this.slots.size;
  }
}
