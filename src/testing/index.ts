/**
 * `tributary/testing`: the sink conformance kit. Any sink author runs it from their own
 * tests against a real target:
 *
 * ```ts
 * import { describeSinkConformance } from 'tributary/testing';
 * import mySink from '../src/index.js';
 *
 * describeSinkConformance({
 *   definition: mySink,
 *   config: { url: 'http://127.0.0.1:9200' },
 *   kind: 'keyed',
 *   async readState() { ... return Map of key → row },
 *   async reset() { ... empty the target ... },
 * });
 * ```
 *
 * It checks ordering, idempotent redelivery, a crash in the middle of a batch, close()
 * during a write (and close() twice), and that a poison event is rejected with an error.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { ChangeEvent, Row } from '../core/event.js';
import type { SinkCheckpoint, SinkDefinition, SinkEvent, SinkInstance } from '../sdk/index.js';

export interface ConformanceOptions {
  definition: SinkDefinition;
  /** The sink's YAML block as an object (without name/type); validated by its schema. */
  config: Record<string, unknown>;
  /**
   * `keyed`: the target holds the latest row per key (caches, indexes, mirrors).
   * `append`: the target holds every event once, in order (files, logs, history tables).
   */
  kind: 'keyed' | 'append';
  /** Keyed: current rows by key string (`JSON.stringify(key)`), as the `after` images. Append: the events in order. */
  readState(): Promise<Map<string, Row> | ChangeEvent[]>;
  /** Empty the target before each case. */
  reset(): Promise<void>;
  /** Build an event this sink must reject (optional: skip the poison case when absent). */
  poison?(base: ChangeEvent): ChangeEvent;
  /** Table used by the generated events. Default `public.conformance`. */
  table?: { schema: string; table: string };
  /** The source connector the events claim to come from. */
  connector?: 'postgresql' | 'mysql';
}

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

/** Build a SinkEvent as the runtime would, for tests of sinks. */
export function makeSinkEvent(event: ChangeEvent, txn: number, index: number): SinkEvent {
  const pos = new CounterPosition(txn);
  const json = JSON.stringify(event);
  return {
    event,
    table: `${event.source.schema ?? event.source.db}.${event.source.table}`,
    position: pos.serialize(),
    index,
    fence: pos.fence() + index.toString(16).padStart(8, '0'),
    version: (pos.ordinal() << 16n) | BigInt(index),
    json,
  };
}

/** Generates a deterministic workload: inserts, updates and deletes over a few keys. */
export class Workload {
  private txn = 1;
  readonly events: SinkEvent[] = [];
  constructor(private readonly o: { schema: string; table: string; connector: 'postgresql' | 'mysql' }) {}

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
      return makeSinkEvent(this.ev(op, op === 'c' ? null : before, after), t, i);
    });
    this.events.push(...out);
    return out;
  }
}

/** A promise that resolves to `value` after `ms`, without keeping the process alive. */
function settleAfter<T>(ms: number, value: T): Promise<T> {
  return new Promise((r) => setTimeout(() => r(value), ms).unref());
}

function logger() {
  return pino({ level: 'silent' });
}

async function instantiate(o: ConformanceOptions, dir: string): Promise<{ sink: SinkInstance; ac: AbortController }> {
  const parsed = o.definition.config.parse(o.config);
  const ac = new AbortController();
  const sink = await o.definition.create(parsed as never, {
    logger: logger(),
    metrics: { inc() {}, set() {} },
    signal: ac.signal,
    pipeline: 'conformance',
    sinkName: 'sut',
    stateDir: dir,
  });
  return { sink, ac };
}

/** The runtime's commit step: `checkpoint()` then remember position and state. */
async function commit(sink: SinkInstance, events: readonly SinkEvent[]): Promise<SinkCheckpoint> {
  const position = events[events.length - 1]!.position;
  const state = await sink.checkpoint?.(position);
  return { position, state };
}

async function write(sink: SinkInstance, events: readonly SinkEvent[], commitPos: string | null): Promise<void> {
  await sink.write(events, { signal: new AbortController().signal, commit: commitPos });
}

function expectedRows(rows: Map<number, Row>): Map<string, Row> {
  const m = new Map<string, Row>();
  for (const [id, r] of rows) m.set(JSON.stringify({ id }), r);
  return m;
}

async function assertState(o: ConformanceOptions, rows: Map<number, Row>, all: SinkEvent[], what: string): Promise<void> {
  const got = await o.readState();
  if (o.kind === 'keyed') {
    const want = expectedRows(rows);
    const g = got as Map<string, Row>;
    assert.deepEqual(new Map([...g].sort()), new Map([...want].sort()), `${what}: target rows differ from the source rows`);
  } else {
    const g = got as ChangeEvent[];
    assert.deepEqual(g.map((e) => JSON.stringify(e)), all.map((e) => e.json), `${what}: target does not hold every event exactly once, in order`);
  }
}

export interface ConformanceCase {
  name: string;
  run(): Promise<void>;
}

/** The cases, as plain async functions (framework-agnostic). */
export function conformanceCases(o: ConformanceOptions): ConformanceCase[] {
  const t = { schema: o.table?.schema ?? 'public', table: o.table?.table ?? 'conformance', connector: o.connector ?? 'postgresql' } as const;
  const dir = () => mkdtempSync(join(tmpdir(), 'tributary-conformance-'));
  const cases: ConformanceCase[] = [
    {
      name: 'applies events in source order across batches',
      async run() {
        await o.reset();
        const d = dir();
        const { sink } = await instantiate(o, d);
        try {
          await sink.open?.({ position: null, state: undefined });
          const w = new Workload(t);
          const rows = new Map<number, Row>();
          const b1 = [...w.txnOf([['c', 1], ['c', 2], ['u', 1, 'first']], rows), ...w.txnOf([['u', 1, 'second'], ['d', 2]], rows)];
          await write(sink, b1, b1.at(-1)!.position);
          await commit(sink, b1);
          const b2 = [...w.txnOf([['c', 2, 'again'], ['u', 1, 'third'], ['c', 3]], rows), ...w.txnOf([['u', 3, 'x'], ['u', 3, 'y'], ['u', 3, 'z']], rows)];
          await write(sink, b2, b2.at(-1)!.position);
          await commit(sink, b2);
          await assertState(o, rows, w.events, 'ordering');
        } finally {
          await sink.close();
        }
      },
    },
    {
      name: 'redelivery after a restart is idempotent',
      async run() {
        await o.reset();
        const d = dir();
        const w = new Workload(t);
        const rows = new Map<number, Row>();
        const a = await instantiate(o, d);
        let cp: SinkCheckpoint;
        const b1 = w.txnOf([['c', 1], ['c', 2], ['c', 3]], rows);
        const b2 = w.txnOf([['u', 1, 'new'], ['d', 3]], rows);
        try {
          await a.sink.open?.({ position: null, state: undefined });
          await write(a.sink, b1, b1.at(-1)!.position);
          cp = await commit(a.sink, b1);
          await write(a.sink, b2, b2.at(-1)!.position);
          // The process dies before the runtime persists b2's checkpoint.
        } finally {
          await a.sink.close();
        }
        const b = await instantiate(o, d);
        try {
          const r = await b.sink.open?.(cp);
          const skipTo = r && r.position ? Number(r.position) : Number(cp.position);
          // The runtime redelivers everything after the newer of the two positions.
          const again = b2.filter((e) => Number(e.position) > skipTo);
          if (again.length) await write(b.sink, again, b2.at(-1)!.position);
          await commit(b.sink, b2);
          // And an older event delivered once more must not regress anything.
          if (o.kind === 'keyed') await write(b.sink, b1, null);
          await assertState(o, rows, w.events, 'redelivery');
        } finally {
          await b.sink.close();
        }
      },
    },
    {
      name: 'a crash in the middle of a batch loses and duplicates nothing',
      async run() {
        await o.reset();
        const d = dir();
        const w = new Workload(t);
        const rows = new Map<number, Row>();
        const b1 = w.txnOf([['c', 1], ['c', 2]], rows);
        // A large transaction split over two batches, the first written before the crash.
        const big = w.txnOf(Array.from({ length: 50 }, (_, i) => ['c', 10 + i] as ['c', number]), rows);
        const a = await instantiate(o, d);
        let cp: SinkCheckpoint;
        try {
          await a.sink.open?.({ position: null, state: undefined });
          await write(a.sink, b1, b1.at(-1)!.position);
          cp = await commit(a.sink, b1);
          await write(a.sink, big.slice(0, 20), null);
        } finally {
          a.ac.abort();
          await a.sink.close();
        }
        const b = await instantiate(o, d);
        try {
          const r = await b.sink.open?.(cp);
          const after = r && r.position ? Number(r.position) : Number(cp.position);
          const redo = big.filter((e) => Number(e.position) > after);
          await write(b.sink, redo.slice(0, 30), null);
          await write(b.sink, redo.slice(30), big.at(-1)!.position);
          await commit(b.sink, big);
          await assertState(o, rows, w.events, 'crash mid-batch');
        } finally {
          await b.sink.close();
        }
      },
    },
    {
      name: 'close() during a write settles, and close() twice is harmless',
      async run() {
        await o.reset();
        const d = dir();
        const w = new Workload(t);
        const rows = new Map<number, Row>();
        const big = w.txnOf(Array.from({ length: 500 }, (_, i) => ['c', i + 1] as ['c', number]), rows);
        const a = await instantiate(o, d);
        await a.sink.open?.({ position: null, state: undefined });
        const writing = write(a.sink, big, big.at(-1)!.position).then(
          () => 'ok',
          () => 'rejected',
        );
        a.ac.abort();
        const closing = Promise.race([a.sink.close().then(() => 'closed'), settleAfter(15000, 'timeout')]);
        assert.equal(await closing, 'closed', 'close() must settle while a write is in flight');
        await a.sink.close(); // idempotent
        const outcome = await Promise.race([writing, settleAfter(15000, 'hung')]);
        assert.notEqual(outcome, 'hung', 'the in-flight write must settle (resolve or reject) after close()');
        // Whatever landed, a restart with no checkpoint redelivers everything and converges.
        const b = await instantiate(o, d);
        try {
          await b.sink.open?.({ position: null, state: undefined });
          await write(b.sink, big, big.at(-1)!.position);
          await commit(b.sink, big);
          await assertState(o, rows, w.events, 'after close during write');
        } finally {
          await b.sink.close();
        }
      },
    },
  ];
  if (o.poison) {
    cases.push({
      name: 'a poison event is rejected with an error, and the rest can still be written',
      async run() {
        await o.reset();
        const d = dir();
        const w = new Workload(t);
        const rows = new Map<number, Row>();
        const good = w.txnOf([['c', 1], ['c', 2]], rows);
        const bad = makeSinkEvent(o.poison!(good[0]!.event), 1, 99);
        const { sink } = await instantiate(o, d);
        try {
          await sink.open?.({ position: null, state: undefined });
          await assert.rejects(() => write(sink, [bad], null), (err: unknown) => err instanceof Error && err.message.length > 0, 'a poison event must make write() reject with an Error');
          await write(sink, good, good.at(-1)!.position);
          await commit(sink, good);
          await assertState(o, rows, w.events, 'after poison');
        } finally {
          await sink.close();
        }
      },
    });
  }
  return cases;
}

/** Register the conformance cases as node:test subtests. */
export function describeSinkConformance(o: ConformanceOptions, title = `sink conformance: ${o.definition.type}`): void {
  describe(title, { concurrency: false }, () => {
    for (const c of conformanceCases(o)) it(c.name, () => c.run());
  });
}

export { assertState as assertSinkState };
