/**
 * Events as the runtime hands them to sinks, built by hand for tests: the conformance kit,
 * the kit's crash child, and sink tests.
 */
import type { ChangeEvent, Row } from '../core/event.js';
import type { SinkEvent } from '../sdk/index.js';

/** A stand-in position for generated events: a plain counter, fixed-width when fenced. */
export class CounterPosition {
  constructor(readonly n: number) {}
  serialize(): string {
    return String(this.n);
  }
  compare(o: CounterPosition): number {
    return this.n - o.n;
  }
  fence(): string {
    return this.n.toString(16).padStart(16, '0');
  }
  ordinal(): bigint {
    return BigInt(this.n);
  }
}

/**
 * Build a SinkEvent as the runtime would, for tests of sinks.
 *
 * By default the event carries its envelope as bytes, the way the built-in sources make
 * every event: `writeJson` copies them (from inside a larger buffer, so a sink that ignores
 * the offsets it is given writes garbage) and `jsonByteLength` is set. `bytes: false` gives
 * an event with only `json`, as events built by hand elsewhere are.
 */
export function makeSinkEvent(event: ChangeEvent, txn: number, index: number, o: { bytes?: boolean } = {}): SinkEvent {
  const pos = new CounterPosition(txn);
  const json = JSON.stringify(event);
  const base = {
    event,
    table: `${event.source.schema ?? event.source.db}.${event.source.table}`,
    position: pos.serialize(),
    index,
    fence: pos.fence() + index.toString(16).padStart(8, '0'),
    version: (pos.ordinal() << 32n) | BigInt(index),
    json,
  };
  if (o.bytes === false) return base;
  const slab = Buffer.from(`{"x":${json}}`);
  const at = 5;
  const len = slab.length - 6;
  return {
    ...base,
    jsonByteLength: len,
    writeJson: (target: Buffer, offset: number) => slab.copy(target, offset, at, at + len),
  };
}

/** Generates a deterministic workload: inserts, updates and deletes over a few keys. */
export class Workload {
  private txn = 1;
  readonly events: SinkEvent[] = [];
  constructor(private readonly o: { schema: string; table: string; connector: 'postgresql' | 'mysql'; bytes?: boolean }) {}

  private ev(op: ChangeEvent['op'], before: Row | null, after: Row | null): ChangeEvent {
    const row = (after ?? before)!;
    return {
      op,
      before,
      after,
      key: { id: row.id! },
      source: {
        connector: this.o.connector,
        name: 'conformance',
        db: this.o.connector === 'mysql' ? this.o.schema : 'conformance',
        schema: this.o.connector === 'postgresql' ? this.o.schema : undefined,
        table: this.o.table,
        ts_ms: 1_700_000_000_000 + this.txn,
        snapshot: 'false',
      },
      ts_ms: 1_700_000_000_000 + this.txn,
    };
  }

  /** One transaction of `ops`; returns its events. */
  txnOf(ops: Array<['c' | 'u' | 'd', number, string?]>, rows: Map<number, Row>): SinkEvent[] {
    const t = this.txn++;
    const out = ops.map(([op, id, name], i) => {
      const before = rows.get(id) ?? null;
      const after: Row | null = op === 'd' ? null : { id, name: name ?? `name-${id}-${t}`, amount: `${id}.${String(t % 100).padStart(2, '0')}`, tags: ['a', String(t)] };
      if (after) rows.set(id, after);
      else rows.delete(id);
      return makeSinkEvent(this.ev(op, op === 'c' ? null : before, after), t, i, { bytes: this.o.bytes });
    });
    this.events.push(...out);
    return out;
  }
}
