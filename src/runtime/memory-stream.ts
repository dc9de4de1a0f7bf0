import type { ChangeEvent, SerializedChangeEvent } from '../core/event.js';
import type { Position } from '../core/source.js';
import type { SinkEvent } from '../sdk/index.js';

/**
 * A change event in the stream. The entry is itself the {@link SinkEvent} every sink
 * receives (one object per event, not an entry wrapping an event wrapping an envelope: at
 * 100k+ events/s each object kept in the stream is one more for the garbage collector to
 * promote). `fence` and `version` are computed only when a sink asks.
 */
export class StreamEvent implements SinkEvent {
  readonly kind = 'event' as const;
  private f?: string;
  /** The envelope's bytes when the source made bytes (then `json` is made only on demand). */
  private readonly b: SerializedChangeEvent | null;
  constructor(
    readonly event: ChangeEvent,
    readonly table: string,
    /** The position of the transaction that holds the event. */
    readonly txn: Position,
    readonly index: number,
    /** The envelope's JSON; null when `event` holds it as bytes. */
    private j: string | null,
    /** What the entry costs in the stream's byte budget. */
    readonly bytes: number,
  ) {
    this.b = j === null ? (event as SerializedChangeEvent) : null;
  }
  get json(): string {
    return (this.j ??= this.b!.json);
  }
  get jsonByteLength(): number | undefined {
    return this.b?.byteLength;
  }
  writeJson(target: Buffer, offset: number): number {
    const b = this.b;
    if (b) return b.bytes!.copy(target, offset, b.offset, b.offset + b.byteLength);
    return target.write(this.json, offset, 'utf8');
  }
  get position(): string {
    return this.txn.serialize();
  }
  get fence(): string {
    return (this.f ??= this.txn.fence() + this.index.toString(16).padStart(8, '0'));
  }
  get version(): bigint {
    // Exact, like the fence: the transaction's ordinal above 32 bits of index. (Clamping the
    // index at 16 bits gave every event past the 65,535th of a transaction one version, and
    // an index that treats an equal version as old dropped later updates: int64Version in
    // the SDK is the narrowed form, with ties made explicit.)
    return (this.txn.ordinal() << 32n) | BigInt(this.index);
  }
}

/** A transaction's commit marker in the stream. */
export interface StreamCommit {
  kind: 'commit';
  txn: Position;
  resume: Position;
  bytes: number;
}

/** One entry of the internal stream: a change event or a transaction's commit marker. */
export type StreamEntry = StreamEvent | StreamCommit;

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
   * Entries from `offset` holding up to `maxEvents` events (commit markers do not count, so
   * a batch of 2,000 spans two 1,000-row transactions, not one), stopping once `maxBytes`
   * are taken (always at least one entry). Returns an empty array when nothing is there yet.
   */
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
