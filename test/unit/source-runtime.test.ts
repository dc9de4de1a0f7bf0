import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import type { Position, SourceContext, SourceItem, SourceLink } from '../../src/core/source.js';
import { SourceRuntime, type SourceDriver, type SourceStream, type StreamHandlers } from '../../src/core/source-sdk.js';
import { Metrics } from '../../src/runtime/metrics.js';
import { RECONNECT_PACE, SourceLinkMonitor } from '../../src/runtime/source-link.js';
import { waitFor } from '../helpers/context.js';

/** A position that is a number. */
class N implements Position {
  constructor(readonly n: number) {}
  serialize(): string {
    return String(this.n);
  }
  compare(o: Position): number {
    return this.n - (o as N).n;
  }
  fence(): string {
    return this.n.toString(16).padStart(16, '0');
  }
  ordinal(): bigint {
    return BigInt(this.n);
  }
}
const at = (n: number) => new N(n);

const ev = (txn: number, idx: number): SourceItem => ({ kind: 'event', event: { op: 'c', before: null, after: { idx }, key: { idx }, source: {}, ts_ms: 0 } as never, txn: at(txn), idx });
const commit = (txn: number, resume: number): SourceItem => ({ kind: 'commit', txn: at(txn), resume: at(resume) });
/** What the stream received, short: `e<txn>.<idx>`, `c<resume>`. */
const short = (i: SourceItem) => (i.kind === 'commit' ? `c${(i.resume as N).n}` : i.kind === 'event' ? `e${(i.txn as N).n}.${i.idx}` : `w${i.id}`);

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

/** One connection the test drives: `fail(err)` breaks it, `end()` is the server closing it. */
class FakeStream implements SourceStream {
  readonly done: Promise<void>;
  private settle!: (err?: unknown) => void;
  pauses = 0;
  resumes = 0;
  closed = false;
  constructor(readonly handlers: StreamHandlers) {
    this.done = new Promise<void>((resolve, reject) => (this.settle = (err) => (err ? reject(err) : resolve())));
    this.done.catch(() => undefined);
  }
  fail(err: unknown): void {
    this.settle(err);
  }
  pause(): void {
    this.pauses++;
  }
  resume(): void {
    this.resumes++;
  }
  close(): void {
    this.closed = true;
    this.settle();
  }
}

/**
 * A connector that does nothing by itself: each `connect` takes the next planned outcome (an
 * error to throw, or a script to run on the new stream).
 */
class FakeDriver implements SourceDriver {
  readonly resumes: (number | null)[] = [];
  readonly acks: number[] = [];
  readonly streams: FakeStream[] = [];
  disconnects = 0;
  gate?: () => Promise<void> | undefined;
  constructor(private readonly plan: (Error | ((s: FakeStream) => void))[]) {}
  async preflight() {
    return [];
  }
  parsePosition(s: string): Position {
    return at(Number(s));
  }
  async connect(resume: Position | null, h: StreamHandlers): Promise<SourceStream> {
    this.resumes.push(resume ? (resume as N).n : null);
    const next = this.plan.shift();
    if (next instanceof Error) throw next;
    const s = new FakeStream(h);
    this.streams.push(s);
    // The script runs once the runtime holds the stream, as data arrives after the connect.
    if (next) setImmediate(() => next(s));
    return s;
  }
  explain(err: unknown): Error | null {
    return (err as { code?: string }).code === 'SLOT_GONE' ? new TributaryError(ErrorCodes.PG_SLOT_LOST, 'the slot is gone', { fix: 'recreate it' }) : null;
  }
  disconnected(): void {
    this.disconnects++;
  }
  commitGate(): Promise<void> | undefined {
    return this.gate?.();
  }
  acknowledge(resume: Position): void {
    this.acks.push((resume as N).n);
  }
  async close(): Promise<void> {}
}

/** A pipeline context whose link is the real monitor, with its waits recorded and shortened. */
function context(o: { storedState?: boolean } = {}) {
  const ac = new AbortController();
  const metrics = new Metrics();
  const monitor = new SourceLinkMonitor({ pipeline: 'p', logger: pino({ level: 'silent' }), metrics });
  if (o.storedState) monitor.noteStoredState();
  const delays: number[] = [];
  const link: SourceLink = {
    up: () => monitor.up(),
    lost: async (err) => {
      const d = monitor.retryDelay(err);
      delays.push(d);
      await new Promise((r) => setTimeout(r, 5));
    },
  };
  const ctx = { pipeline: 'p', logger: pino({ level: 'silent' }), signal: ac.signal, metrics, store: {} as never, link } satisfies SourceContext;
  return { ac, ctx, delays, monitor, metrics, [Symbol.dispose]: () => (ac.abort(), monitor.close()) };
}

/** A stream that takes everything (or refuses while `full`), recording it. */
function output() {
  const items: SourceItem[] = [];
  let drain: () => void = () => undefined;
  const o = {
    items,
    full: false,
    push(i: SourceItem) {
      items.push(i);
      return !o.full;
    },
    drained: () => new Promise<void>((r) => (drain = r)),
    drain: () => {
      o.full = false;
      drain();
    },
    get seen() {
      return items.map(short);
    },
  };
  return o;
}

describe('source runtime (src/core/source-sdk.ts)', () => {
  it('reconnects with backoff after transient failures, resumes at the last commit, and drops the re-read part of an open transaction', async () => {
    using c = context();
    const out = output();
    const driver = new FakeDriver([
      pgError('57P03', 'the database system is starting up'),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      (s) => {
        s.handlers.alive();
        for (const i of [ev(10, 0), commit(10, 11), ev(20, 0), ev(20, 1)]) s.handlers.push(i);
        s.fail(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
      },
      (s) => {
        s.handlers.alive();
        // The server sends the open transaction again from its start.
        for (const i of [ev(20, 0), ev(20, 1), ev(20, 2), commit(20, 21)]) s.handlers.push(i);
      },
    ]);
    const rt = new SourceRuntime(driver, c.ctx);
    const run = rt.run(at(5), out);
    await waitFor(() => out.items.length >= 6, { what: 'the items of both connections' });
    assert.deepEqual(out.seen, ['e10.0', 'c11', 'e20.0', 'e20.1', 'e20.2', 'c21'], 'each item exactly once, in order');
    assert.deepEqual(driver.resumes, [5, 5, 5, 11], 'every attempt resumes at the last commit handed over');
    assert.equal(c.delays.length, 3, 'each failure waited once');
    const pace = RECONNECT_PACE.transient;
    assert.ok(c.delays[0]! >= pace.baseMs / 2 && c.delays[0]! <= pace.baseMs, `first wait ${c.delays[0]}`);
    assert.ok(c.delays[1]! >= pace.baseMs && c.delays[1]! <= pace.baseMs * 2, `second wait doubles: ${c.delays[1]}`);
    assert.ok(c.monitor.isUp, 'the link is up again');
    assert.ok(driver.streams[0]!.closed, 'the broken connection was closed, never reused');
    assert.equal(driver.disconnects, 3);
    c.ac.abort();
    await run;
  });

  it('keeps the replay of an open transaction across an attempt that fails before reading anything', async () => {
    using c = context();
    const out = output();
    const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const driver = new FakeDriver([
      (s) => (s.handlers.push(ev(7, 0)), s.handlers.push(ev(7, 1)), s.fail(reset())),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      (s) => s.fail(reset()), // connected, but broke before the server sent anything
      (s) => {
        for (const i of [ev(7, 0), ev(7, 1), ev(7, 2), commit(7, 8)]) s.handlers.push(i);
      },
    ]);
    const run = new SourceRuntime(driver, c.ctx).run(null, out);
    await waitFor(() => out.items.some((i) => i.kind === 'commit'), { what: 'the commit' });
    assert.deepEqual(out.seen, ['e7.0', 'e7.1', 'e7.2', 'c8'], 'never twice, however many attempts in between');
    c.ac.abort();
    await run;
  });

  it('a connection the server ends without an error is a transient failure too', async () => {
    using c = context();
    const out = output();
    const driver = new FakeDriver([(s) => (s.handlers.alive(), s.handlers.push(commit(1, 2)), s.close()), (s) => s.handlers.push(commit(3, 4))]);
    const run = new SourceRuntime(driver, c.ctx).run(null, out);
    await waitFor(() => out.items.length >= 2, { what: 'the second connection' });
    assert.deepEqual(driver.resumes, [null, 2]);
    assert.equal(c.delays.length, 1);
    c.ac.abort();
    await run;
  });

  it('acknowledges only what the pipeline says is durable, or an idle position when nothing is in flight', async () => {
    using c = context();
    const out = output();
    let h!: StreamHandlers;
    const driver = new FakeDriver([(s) => (h = s.handlers)]);
    const rt = new SourceRuntime(driver, c.ctx);
    const run = rt.run(at(100), out);
    await waitFor(() => h, { what: 'the connection' });
    assert.equal((h.acknowledged as N).n, 100, 'the stored position counts as acknowledged');
    h.passed(at(150));
    assert.deepEqual(driver.acks, [150], 'idle: the server may discard what holds nothing for us');
    h.push(ev(200, 0));
    h.passed(at(300));
    assert.deepEqual(driver.acks, [150], 'never past an open transaction');
    h.push(commit(200, 201));
    h.passed(at(300));
    assert.deepEqual(driver.acks, [150], 'never past a commit the sinks do not hold yet');
    rt.acknowledge(at(201));
    rt.acknowledge(at(180));
    assert.deepEqual(driver.acks, [150, 201], 'the pipeline acknowledgement goes through, never backwards');
    h.passed(at(300));
    assert.deepEqual(driver.acks, [150, 201, 300]);
    assert.equal((h.acknowledged as N).n, 300);
    assert.deepEqual(out.seen, ['e200.0', 'c201'], 'an idle position pushes nothing');
    c.ac.abort();
    await run;
  });

  it('a source without a slot gets an empty commit for an idle position, but not inside a transaction', async () => {
    using c = context();
    const out = output();
    let h!: StreamHandlers;
    const driver = new FakeDriver([(s) => (h = s.handlers)]);
    const run = new SourceRuntime(driver, c.ctx).run(at(10), out);
    await waitFor(() => h, { what: 'the connection' });
    h.passed(at(10), at(9));
    h.passed(at(20), at(19));
    h.push(ev(30, 0));
    h.passed(at(40), at(39));
    h.push(commit(30, 31));
    assert.deepEqual(out.seen, ['c20', 'e30.0', 'c31']);
    assert.deepEqual(driver.acks, [], 'pushed, not acknowledged');
    c.ac.abort();
    await run;
  });

  it('pauses the connection while the stream is full and resumes once it drains', async () => {
    using c = context();
    const out = output();
    let s!: FakeStream;
    const driver = new FakeDriver([(x) => (s = x)]);
    const run = new SourceRuntime(driver, c.ctx).run(null, out);
    await waitFor(() => s, { what: 'the connection' });
    out.full = true;
    s.handlers.push(ev(1, 0));
    s.handlers.push(ev(1, 1));
    assert.equal(s.pauses, 1, 'paused once, however many items are refused');
    assert.match(await c.metrics.render(), /tributary_source_paused\{pipeline="p"\} 1/);
    out.drain();
    await waitFor(() => s.resumes === 1, { what: 'the resume' });
    assert.match(await c.metrics.render(), /tributary_source_paused\{pipeline="p"\} 0/);
    c.ac.abort();
    await run;
  });

  it('a commit waits behind the commit gate with everything after it, and a reconnect resumes after it', async () => {
    using c = context();
    const out = output();
    let release!: () => void;
    let gated = false;
    const driver = new FakeDriver([
      (s) => {
        s.handlers.push(ev(1, 0));
        s.handlers.push(commit(1, 2));
        s.handlers.push(ev(3, 0));
        s.fail(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
      },
      () => undefined,
    ]);
    driver.gate = () => {
      if (gated) return undefined;
      gated = true;
      return new Promise<void>((r) => (release = r));
    };
    const run = new SourceRuntime(driver, c.ctx).run(null, out);
    await waitFor(() => driver.streams[0]?.closed, { what: 'the first connection to break' });
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(out.seen, ['e1.0'], 'the commit and what follows wait for the gate');
    assert.equal(driver.resumes.length, 1, 'the next connection waits for the gate too');
    release();
    await waitFor(() => driver.resumes.length === 2, { what: 'the reconnect' });
    assert.deepEqual(driver.resumes, [null, 2], 'the new connection resumes after the held commit');
    assert.deepEqual(out.seen, ['e1.0', 'c2', 'e3.0'], 'released in order');
    c.ac.abort();
    await run;
  });

  it('a refused login is retried slowly once a login has worked, and is a config error when it never has', async () => {
    {
      using c = context({ storedState: true });
      const driver = new FakeDriver([pgError('28P01', 'password authentication failed for user "app"'), () => undefined]);
      const run = new SourceRuntime(driver, c.ctx).run(null, output());
      await waitFor(() => driver.resumes.length === 2, { what: 'the retry' });
      assert.ok(c.delays[0]! >= RECONNECT_PACE.auth.baseMs / 2, `a password rotation is waited for slowly: ${c.delays[0]} ms`);
      c.ac.abort();
      await run;
    }
    {
      using c = context();
      const driver = new FakeDriver([pgError('28P01', 'password authentication failed for user "app"')]);
      await assert.rejects(new SourceRuntime(driver, c.ctx).run(null, output()), (e: TributaryError) => e.code === ErrorCodes.SOURCE_AUTH);
      assert.equal(driver.resumes.length, 1, 'never retried');
    }
  });

  it('a config error, or a failure the connector explains, fails fast without a retry', async () => {
    {
      using c = context();
      const driver = new FakeDriver([pgError('3D000', 'database "nope" does not exist')]);
      await assert.rejects(new SourceRuntime(driver, c.ctx).run(null, output()), /does not exist/);
      assert.deepEqual([driver.resumes.length, c.delays.length], [1, 0]);
    }
    {
      using c = context();
      const driver = new FakeDriver([(s) => s.fail(Object.assign(new Error('slot gone'), { code: 'SLOT_GONE' }))]);
      await assert.rejects(new SourceRuntime(driver, c.ctx).run(null, output()), (e: TributaryError) => e.code === ErrorCodes.PG_SLOT_LOST);
      assert.deepEqual([driver.resumes.length, c.delays.length], [1, 0]);
      assert.ok(driver.streams[0]!.closed);
    }
  });

  it('stops on abort: the open connection is closed and run resolves', async () => {
    using c = context();
    const driver = new FakeDriver([() => undefined]);
    const rt = new SourceRuntime(driver, c.ctx);
    const run = rt.run(null, output());
    await waitFor(() => driver.streams.length === 1, { what: 'the connection' });
    c.ac.abort();
    await run;
    assert.ok(driver.streams[0]!.closed);
    await rt.close();
    await rt.close(); // idempotent
  });
});
