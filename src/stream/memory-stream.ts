import { commitTime } from '../core/event.js';
import type { StreamEntry } from './entries.js';
import type { DurableCommit, EventStream, StartAt, StreamConsumer } from './types.js';

/**
 * The in-memory stream (`stream: {type: memory}`): one cursor per consumer group, bounded in
 * bytes, nothing retained. An entry is dropped once every consumer has taken it into a
 * batch; a restart reads again from the source what no sink had committed, so nothing here
 * needs to survive a crash, and the database is acknowledged only at the slowest sink.
 *
 * Backpressure: `append` returns false once the retained bytes exceed the budget, and the
 * source then awaits `drained()` before it reads its socket again. That is what keeps a
 * 10-million-row transaction from exhausting memory: it flows through in pieces.
 */
export class MemoryStream implements EventStream {
  readonly kind = 'memory' as const;
  /** Offset of `entries[head]`. Offsets are never reused. */
  private base = 0;
  private head = 0;
  private entries: (StreamEntry | undefined)[] = [];
  private retainedBytes = 0;
  private readonly cursors = new Map<MemoryConsumer, number>();
  private waiters: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.retainedBytes;
  }

  get end(): number {
    return this.base + this.entries.length - this.head;
  }

  append(entry: StreamEntry): boolean {
    entry.offset = this.end;
    this.entries.push(entry);
    this.retainedBytes += entry.bytes;
    if (this.waiters.length) {
      const w = this.waiters;
      this.waiters = [];
      for (const fn of w) fn();
    }
    return this.retainedBytes < this.maxBytes;
  }

  drained(): Promise<void> {
    if (this.retainedBytes < this.maxBytes) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Never called: nothing here is durable; each sink's checkpoint is. */
  onDurable(_fn: (commit: DurableCommit) => void): void {}

  /**
   * Every consumer starts at the current end: consumers are made before the source runs,
   * and what no sink committed is read from the source again, so there is nothing earlier.
   */
  async consumer(_group: string, _from: number | null, _start: StartAt): Promise<StreamConsumer> {
    const c = new MemoryConsumer(this, this.end);
    this.cursors.set(c, c.position);
    return c;
  }

  /** Entries from `offset`, up to `maxEvents` events and about `maxBytes` (at least one). */
  read(offset: number, maxEvents: number, maxBytes: number): StreamEntry[] {
    const out: StreamEntry[] = [];
    let i = this.head + (offset - this.base);
    let bytes = 0;
    let events = 0;
    while (i < this.entries.length && (bytes < maxBytes || out.length === 0)) {
      const e = this.entries[i]!;
      if (e.kind === 'event') {
        if (events === maxEvents) break;
        events++;
      }
      i++;
      bytes += e.bytes;
      out.push(e);
    }
    return out;
  }

  /** The entry at `offset`, if it is still held. */
  at(offset: number): StreamEntry | undefined {
    return offset >= this.base ? this.entries[this.head + (offset - this.base)] : undefined;
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

  /** Consumer `c` has taken everything below `offset` (or, with null, is gone). */
  moved(c: MemoryConsumer, offset: number | null): void {
    if (offset === null) this.cursors.delete(c);
    else this.cursors.set(c, offset);
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

  async close(): Promise<void> {
    for (const c of [...this.cursors.keys()]) c.close();
  }
}

class MemoryConsumer implements StreamConsumer {
  private closed = false;

  constructor(
    private readonly s: MemoryStream,
    public position: number,
  ) {}

  async next(maxEvents: number, maxBytes: number, signal: AbortSignal, wait = true): Promise<StreamEntry[]> {
    for (;;) {
      if (signal.aborted || this.closed) return [];
      const out = this.s.read(this.position, maxEvents, maxBytes);
      if (out.length) {
        // Taken entries leave the stream now, not once written: the source refills the
        // stream while the sink writes and fsyncs. A failed write is retried from the batch
        // in hand; after a crash, what no sink committed is read from the source again.
        this.position += out.length;
        this.s.moved(this, this.position);
        return out;
      }
      if (!wait) return out;
      await this.s.wait(this.position, signal);
    }
  }

  get behind(): number {
    return this.s.end - this.position;
  }

  nextTime(): number | null {
    const e = this.s.at(this.position);
    return e && e.kind === 'event' ? commitTime(e.event) : null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.s.moved(this, null);
  }
}
