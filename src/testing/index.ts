/**
 * `tributary/testing`: the sink conformance kit, and the stream conformance suite every
 * backend of the internal stream passes (`describeStreamConformance`, stream.ts). Any sink author runs it from their own
 * tests against a real target:
 *
 * ```ts
 * import { describeSinkConformance } from 'tributary/testing';
 * import mySink from '../src/index.js';
 *
 * describeSinkConformance({
 *   definition: mySink,
 *   module: new URL('../src/index.js', import.meta.url),   // loaded in a child process that is SIGKILLed
 *   config: { url: 'http://127.0.0.1:9200' },
 *   kind: 'keyed',
 *   poison: (base) => ({ ...base, key: null }),             // or noPoison: 'why every event is accepted'
 *   async readState() { ... return Map of key → row },
 *   async reset() { ... empty the target ... },
 * });
 * ```
 *
 * It checks ordering, idempotent redelivery, a SIGKILL of a process running the sink in the
 * middle of a batch, close() during a write (and close() twice), that a poison event is
 * rejected with `PoisonEventError`, that checkpoint state is plain JSON (it is stored as JSON:
 * the kit hands the sink back what JSON returns, as the runtime does), and that the
 * `writeJson` fast path gives the same target as `json` (the kit's events carry bytes, as
 * the built-in sources' events do).
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { ChangeEvent, Row } from '../core/event.js';
import { PoisonEventError } from '../core/errors.js';
import { plainJsonProblem } from '../core/plain-json.js';
import type { SinkCheckpoint, SinkDefinition, SinkEvent, SinkInstance } from '../sdk/index.js';
import type { CrashPlan } from './crash-child.js';
import { makeSinkEvent, Workload } from './events.js';

export { CounterPosition, makeSinkEvent, Workload } from './events.js';
export { describeStreamConformance, streamConformanceCases, type StreamBackend, type StreamCapabilities, type StreamConformanceCase, type StreamOpenOptions } from './stream.js';

export interface ConformanceOptions {
  definition: SinkDefinition;
  /**
   * The module that default-exports `definition`, as a file URL or a path: the crash case
   * loads it in a child process, writes through it, and SIGKILLs that process mid-batch.
   */
  module: string | URL;
  /** The sink's YAML block as an object (without name/type); validated by its schema. Plain JSON. */
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
  /**
   * Build an event this sink must reject with `PoisonEventError` (the error the runtime
   * dead-letters at once). The poison case is mandatory: a sink that accepts every event
   * gives `noPoison` instead.
   */
  poison?(base: ChangeEvent): ChangeEvent;
  /** Why this sink has no poison event (it accepts every event). The kit prints it. */
  noPoison?: string;
  /** Table used by the generated events. Default `public.conformance`. */
  table?: { schema: string; table: string };
  /** The source connector the events claim to come from. */
  connector?: 'postgresql' | 'mysql';
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

/**
 * The runtime's commit step: `checkpoint()`, then the state goes through JSON, as it does in
 * every state store. State that is not plain JSON fails here, naming what is wrong, instead
 * of coming back different after a restart (a Map as {}) or failing to be stored (a BigInt).
 */
async function commit(sink: SinkInstance, events: readonly SinkEvent[]): Promise<SinkCheckpoint> {
  const position = events[events.length - 1]!.position;
  return { position, state: stored(await sink.checkpoint?.(position)) };
}

/** What a state store returns for checkpoint state: the same value through JSON, or a failure. */
function stored(state: unknown): unknown {
  if (state === undefined) return undefined;
  const problem = plainJsonProblem(state);
  assert.equal(problem, null, `checkpoint() must return plain JSON (the state store keeps it as JSON; the runtime stops with TRB3014): ${problem}`);
  return JSON.parse(JSON.stringify(state));
}

async function write(sink: SinkInstance, events: readonly SinkEvent[], commitPos: string | null): Promise<void> {
  await sink.write(events, { signal: new AbortController().signal, commit: commitPos });
}

function expectedRows(rows: Map<number, Row>): Map<string, Row> {
  const m = new Map<string, Row>();
  for (const [id, r] of rows) m.set(JSON.stringify({ id }), r);
  return m;
}

async function readState(o: ConformanceOptions, what: string): Promise<Map<string, Row> | ChangeEvent[]> {
  try {
    return await o.readState();
  } catch (err) {
    throw new Error(
      `${what}: reading the target failed (${(err as Error).message})` +
        (o.kind === 'append' ? '. Is every event written whole, on a line of its own? The events carry writeJson (the fast path of a real pipeline): a sink must write exactly the bytes it returns, at the offset it is given, and still end each line' : ''),
      { cause: err },
    );
  }
}

async function assertState(o: ConformanceOptions, rows: Map<number, Row>, all: SinkEvent[], what: string): Promise<void> {
  const got = await readState(o, what);
  if (o.kind === 'keyed') {
    const want = expectedRows(rows);
    const g = got as Map<string, Row>;
    assert.deepEqual(new Map([...g].sort()), new Map([...want].sort()), `${what}: target rows differ from the source rows`);
  } else {
    const g = got as ChangeEvent[];
    assert.deepEqual(g.map((e) => JSON.stringify(e)), all.map((e) => e.json), `${what}: target does not hold every event exactly once, in order`);
  }
}

/** Run `plan` in a child process and SIGKILL it when it starts the step marked `kill`. */
async function crashChild(plan: CrashPlan): Promise<{ checkpoints: SinkCheckpoint[]; killedMidWrite: boolean }> {
  const child = fork(fileURLToPath(new URL('./crash-child.js', import.meta.url)), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
  const checkpoints: SinkCheckpoint[] = [];
  let killedMidWrite = false;
  let failure: string | null = null;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const timer = setTimeout(() => {
    failure = 'the child running the sink did not reach the crash point within 60 s';
    child.kill('SIGKILL');
  }, 60_000);
  child.on('message', (m: { kind: string; position?: string; state?: unknown; message?: string }) => {
    if (m.kind === 'writing') {
      killedMidWrite = true;
      child.kill('SIGKILL');
    } else if (m.kind === 'checkpoint') {
      // A checkpoint the child sends after the kill was decided (a loaded machine delivers
      // SIGKILL late, and a quick sink finishes the step first) is dropped: as if the process
      // died before the runtime persisted it, which the sink must survive just the same.
      if (!killedMidWrite) checkpoints.push({ position: m.position!, state: m.state });
    }
    else if (m.kind === 'error') failure = `the sink failed in the child process: ${m.message}`;
    else if (m.kind === 'done') child.kill('SIGKILL');
  });
  child.send(plan);
  await exited;
  clearTimeout(timer);
  if (failure) assert.fail(failure);
  return { checkpoints, killedMidWrite };
}

function plain(events: readonly SinkEvent[]): CrashPlan['steps'][number]['events'] {
  return events.map((e) => ({ event: e.event, txn: Number(e.position), index: e.index }));
}

export interface ConformanceCase {
  name: string;
  /** When set, the case does not run, and this says why (the poison opt-out). */
  skip?: string;
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
      name: 'a SIGKILL of the process in the middle of a batch loses and duplicates nothing',
      async run() {
        if (!o.module) assert.fail('the crash case needs `module`: the URL or path of the module that default-exports the sink, so the kit can run it in a child process and SIGKILL that process');
        await o.reset();
        const d = dir();
        const w = new Workload(t);
        const rows = new Map<number, Row>();
        const b1 = w.txnOf([['c', 1], ['c', 2]], rows);
        // A large transaction split over batches with no checkpoint between them; the process
        // is killed as it starts writing the second piece.
        const big = w.txnOf(Array.from({ length: 400 }, (_, i) => ['c', 10 + i] as ['c', number]), rows);
        const { checkpoints, killedMidWrite } = await crashChild({
          module: o.module instanceof URL ? o.module.href : o.module,
          config: o.config,
          stateDir: d,
          checkpoint: { position: null, state: undefined },
          steps: [
            { events: plain(b1), commit: b1.at(-1)!.position },
            { events: plain(big.slice(0, 100)), commit: null },
            { events: plain(big.slice(100)), commit: big.at(-1)!.position, kill: true },
          ],
        });
        assert.ok(killedMidWrite, 'the child was killed while writing');
        assert.equal(checkpoints.length, 1, 'the first transaction was committed before the kill');
        // The runtime persisted the first checkpoint (as JSON), then the process died.
        const cp: SinkCheckpoint = { position: checkpoints[0]!.position, state: stored(checkpoints[0]!.state) };
        const b = await instantiate(o, d);
        try {
          const r = await b.sink.open?.(cp);
          const after = r && r.position ? Number(r.position) : Number(cp.position);
          const redo = big.filter((e) => Number(e.position) > after);
          await write(b.sink, redo.slice(0, 150), null);
          await write(b.sink, redo.slice(150), big.at(-1)!.position);
          await commit(b.sink, big);
          await assertState(o, rows, w.events, 'SIGKILL mid-batch');
        } finally {
          await b.sink.close();
        }
      },
    },
    {
      name: 'the writeJson fast path gives the same target as json',
      async run() {
        // Real pipelines hand sinks events that carry their bytes (writeJson); events built by
        // hand carry only json. Both must end in the same target.
        const results: (Map<string, Row> | ChangeEvent[])[] = [];
        for (const bytes of [false, true]) {
          await o.reset();
          const w = new Workload({ ...t, bytes });
          const rows = new Map<number, Row>();
          const b1 = [...w.txnOf([['c', 1, 'ünïcödé ✓'], ['c', 2], ['c', 3]], rows), ...w.txnOf([['u', 1, 'line\nbreak "quoted"'], ['d', 2]], rows)];
          const { sink } = await instantiate(o, dir());
          try {
            await sink.open?.({ position: null, state: undefined });
            await write(sink, b1, b1.at(-1)!.position);
            await commit(sink, b1);
            results.push(await readState(o, bytes ? 'events with writeJson' : 'events with json only'));
            await assertState(o, rows, w.events, bytes ? 'events with writeJson (the fast path)' : 'events with json only');
          } finally {
            await sink.close();
          }
        }
        const norm = (x: Map<string, Row> | ChangeEvent[]) => (x instanceof Map ? [...x].sort() : x);
        assert.deepEqual(norm(results[1]!), norm(results[0]!), 'events with writeJson must give the same target as events with json only');
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
  const poisonName = 'a poison event is rejected with PoisonEventError, and the rest can still be written';
  if (o.poison) {
    cases.push({
      name: poisonName,
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
          let thrown: unknown = null;
          try {
            await write(sink, [bad], null);
          } catch (err) {
            thrown = err;
          }
          assert.ok(thrown !== null, 'a poison event must make write() reject');
          assert.ok(
            thrown instanceof PoisonEventError,
            `a poison event must make write() reject with PoisonEventError (import it from tributary/sdk): the runtime dead-letters that at once, and retries anything else as if the target were at fault. Got: ${thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown)}`,
          );
          await write(sink, good, good.at(-1)!.position);
          await commit(sink, good);
          await assertState(o, rows, w.events, 'after poison');
        } finally {
          await sink.close();
        }
      },
    });
  } else {
    const reason = o.noPoison?.trim();
    cases.push({
      name: poisonName,
      skip: reason ? `no poison event for ${o.definition.type}: ${reason}` : undefined,
      async run() {
        assert.fail('the poison case is mandatory: give `poison(base)`, building an event this sink must reject with PoisonEventError, or `noPoison: "<why this sink accepts every event>"`');
      },
    });
  }
  return cases;
}

/** Register the conformance cases as node:test subtests (an opted-out case shows as skipped, with its reason). */
export function describeSinkConformance(o: ConformanceOptions, title = `sink conformance: ${o.definition.type}`): void {
  describe(title, { concurrency: false }, () => {
    for (const c of conformanceCases(o)) {
      if (c.skip) console.log(`# ${title}: ${c.skip}`);
      it(c.name, { skip: c.skip }, () => c.run());
    }
  });
}

export { assertState as assertSinkState };
