import type { Position } from '../core/source.js';
import type { SinkEvent } from '../sdk/index.js';

/** One entry of the internal stream: a change event or a transaction's commit marker. */
export type StreamEntry =
  | { kind: 'event'; txn: Position; sink: SinkEvent; bytes: number }
  | { kind: 'commit'; txn: Position; resume: Position; bytes: number };

/**
 * The embedded internal stream: an in-memory log with one cursor per consumer, bounded in
 * bytes. Entries are released once every consumer has moved past them.
 *
 * Backpressure: `push` returns false once the retained bytes exceed the budget, and the
 * source then awaits `drained()` before it reads its socket again. That is what keeps a
 * 10-million-row transaction from exhausting memory: it flows through in pieces.
 */
export class MemoryStream {
  /** Offset of `entries[head]`. Offsets are never reused. */
  private base = 0;
  private head = 0;
  private entries: (StreamEntry | undefined)[] = [];
  private retainedBytes = 0;
  private readonly cursors = new Map<string, number>();
  private waiters: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.retainedBytes;
  }

  /** The offset the next pushed entry will get. */
  get end(): number {
    return this.base + this.entries.length - this.head;
  }

  /** Register a consumer at the current end (consumers are created before the source runs). */
  register(consumer: string): number {
    const at = this.end;
    this.cursors.set(consumer, at);
    return at;
  }

  unregister(consumer: string): void {
    this.cursors.delete(consumer);
    this.trim();
  }

  /** Append an entry. Returns false when the stream is over its byte budget. */
  push(entry: StreamEntry): boolean {
    this.entries.push(entry);
    this.retainedBytes += entry.bytes;
    if (this.waiters.length) {
      const w = this.waiters;
      this.waiters = [];
      for (const fn of w) fn();
    }
    return this.retainedBytes < this.maxBytes;
  }

  /** Resolves when the retained bytes are below the budget again. */
  drained(): Promise<void> {
    if (this.retainedBytes < this.maxBytes) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Up to `maxEntries` entries from `offset`, stopping once `maxBytes` are taken (always
   * at least one entry). Returns an empty array when nothing is there yet.
   */
  read(offset: number, maxEntries: number, maxBytes: number): StreamEntry[] {
    const out: StreamEntry[] = [];
    let i = this.head + (offset - this.base);
    let bytes = 0;
    while (i < this.entries.length && out.length < maxEntries && (bytes < maxBytes || out.length === 0)) {
      const e = this.entries[i++]!;
      bytes += e.bytes;
      out.push(e);
    }
    return out;
  }

  /** Resolves when an entry at `offset` exists, or the signal aborts. */
  wait(offset: number, signal: AbortSignal): Promise<void> {
    if (offset < this.end || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const onAbort = () => resolve();
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** A consumer is done with everything below `offset`. */
  release(consumer: string, offset: number): void {
    this.cursors.set(consumer, offset);
    this.trim();
  }

  private trim(): void {
    let min = this.end;
    for (const c of this.cursors.values()) if (c < min) min = c;
    const drop = min - this.base;
    if (drop <= 0) return;
    for (let i = this.head; i < this.head + drop; i++) {
      this.retainedBytes -= this.entries[i]!.bytes;
      this.entries[i] = undefined;
    }
    this.head += drop;
    this.base = min;
    // Compact occasionally so the array does not grow without bound.
    if (this.head > 65536 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    if (this.retainedBytes < this.maxBytes && this.drainWaiters.length) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const fn of w) fn();
    }
  }
}
