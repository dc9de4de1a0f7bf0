/**
 * The entries of the internal stream: change events (each itself the SinkEvent sinks
 * receive) and transaction commit markers.
 */
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
  /** Where the entry sits in the stream; set by the stream when it is appended. */
  offset = -1;
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
  /** Where the entry sits in the stream; set by the stream when it is appended. */
  offset: number;
}

/** One entry of the internal stream: a change event or a transaction's commit marker. */
export type StreamEntry = StreamEvent | StreamCommit;
