/**
 * The database-restart scenario both sources run (pg-restarts, mysql-restarts), against a
 * private server the test owns:
 *
 * 1. `tributary run` (a real child process) starts while its database is down: it waits,
 *    `/readyz` answers 503, `/status` says why, `tributary_source_up` is 0.
 * 2. The database comes up, and goes down again while the pipeline is starting (preflight /
 *    prepare), for 5 s.
 * 3. Under a steady writer (one row change per transaction, running since before step 1),
 *    the database is restarted twice more while the pipeline streams: once as a crash, once
 *    cleanly, 5 s down each time.
 *
 * Afterwards the jsonl sink holds every committed change exactly once (one insert per row of
 * the table, as many updates of each row as its counter says), and the process never exited.
 */
import assert from 'node:assert/strict';
import type { ChangeEvent } from '../../src/core/event.js';
import { TempDir, TributaryProcess, waitFor } from './context.js';
import { freePort } from './servers/common.js';
import { readJsonl } from './pipeline.js';

/** One writer connection: each call is one autocommitted transaction. */
export interface RestartWriter {
  insert(id: number): Promise<void>;
  /** `UPDATE items SET v = v + 1 WHERE id = ?` */
  bump(id: number): Promise<void>;
  end(): Promise<void>;
}

export interface RestartSubject {
  /** For messages. */
  label: string;
  /** Pipeline name. */
  name: string;
  /** The source block (unindented YAML); its tables hold `items (id int primary key, v int)`. */
  sourceYaml: string;
  /** A new writer connection (fails while the server is down). */
  writer(): Promise<RestartWriter>;
  /** `items` as it is now. */
  rows(): Promise<{ id: number; v: number }[]>;
  stop(kind: 'clean' | 'crash'): Promise<void>;
  start(): Promise<void>;
  /**
   * With the server down and `tributary run` waiting for it: start the server, and stop it
   * again while the pipeline is in its start-up (preflight/prepare). Resolves once it is down.
   */
  startupOutage(proc: TributaryProcess): Promise<void>;
}

const DOWN_MS = 5_000;

export async function restartScenario(s: RestartSubject): Promise<void> {
  await using dir = new TempDir(`tributary-${s.label}-restart-`);
  const out = dir.file('items.jsonl');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const cfg = dir.file(
    'restart.yaml',
    `name: ${s.name}
source:
${s.sourceYaml.trim().replace(/^/gm, '  ')}
state: { type: file, dir: ${dir.path}/state }
sinks:
  - { name: audit, type: jsonl, path: ${out} }
http: { port: ${port} }
`,
  );
  const t0 = Date.now();
  const at = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const notes: string[] = [];

  // The writer runs through every outage: a statement that fails is not retried (the table
  // says in the end whether it committed), the connection is made again until it works.
  let stopWriting = false;
  let attempted = 0;
  let failed = 0;
  let nextId = 1;
  const ids: number[] = [];
  const writing = (async () => {
    let w: RestartWriter | null = null;
    while (!stopWriting) {
      try {
        w ??= await s.writer();
        attempted++;
        if (ids.length < 10 || Math.random() < 0.6) {
          const id = nextId++;
          ids.push(id);
          await w.insert(id);
        } else await w.bump(ids[Math.floor(Math.random() * ids.length)]!);
        await new Promise((r) => setTimeout(r, 15));
      } catch {
        failed++;
        await w?.end().catch(() => undefined);
        w = null;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await w?.end().catch(() => undefined);
  })();

  let proc: TributaryProcess | undefined;
  try {
    await waitFor(() => attempted >= 20, { what: 'the writer to start' });
    // 1. Started while its database is down: it waits, and says so.
    await s.stop('clean');
    proc = TributaryProcess.start(['run', '--config', cfg]);
    await proc.waitForLog(/cannot reach the database: .*waiting for it/);
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(proc.running, 'tributary run waits for its database instead of exiting');
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 503, '/readyz fails while the database is down');
    const st = (await (await fetch(`${base}/status`)).json()) as { pipelines: { name: string; state: string; source: { up: boolean; attempts: number; lastError: string } }[] };
    const mine = st.pipelines.find((p) => p.name === s.name)!;
    assert.ok(['waiting', 'starting'].includes(mine.state), `state ${mine.state}`);
    assert.equal(mine.source.up, false);
    assert.ok(mine.source.attempts >= 2, `attempts ${mine.source.attempts}`);
    assert.match(mine.source.lastError, /ECONNREFUSED/);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, new RegExp(`tributary_source_up\\{pipeline="${s.name}"\\} 0`));
    assert.match(metrics, new RegExp(`tributary_source_reconnects_total\\{pipeline="${s.name}"\\} [1-9]`));
    notes.push(`${at()} waiting while down: /readyz 503, state ${mine.state}, ${mine.source.attempts} attempts, last error "${mine.source.lastError}"`);

    // 2. The server comes up, and goes down again while the pipeline starts.
    await s.startupOutage(proc);
    notes.push(`${at()} down again during start-up`);
    await new Promise((r) => setTimeout(r, DOWN_MS));
    await s.start();
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { timeoutMs: 60_000, what: '/readyz 200 after the start-up outage' });
    notes.push(`${at()} running`);

    // 3. Two restarts while streaming, under the writer.
    for (const kind of ['crash', 'clean'] as const) {
      const before = attempted;
      await waitFor(() => attempted >= before + 100 && readJsonl(out).length > 0, { timeoutMs: 60_000, what: 'the writer to commit 100 more changes' });
      await s.stop(kind);
      const down = Date.now();
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 503, { timeoutMs: 20_000, what: '/readyz 503 while the database is down' });
      await new Promise((r) => setTimeout(r, Math.max(0, DOWN_MS - (Date.now() - down))));
      await s.start();
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { timeoutMs: 60_000, what: `/readyz 200 after the ${kind} restart` });
      notes.push(`${at()} back after a ${kind} restart while streaming`);
    }
    const before = attempted;
    await waitFor(() => attempted >= before + 100, { timeoutMs: 60_000, what: 'the writer to commit 100 more changes' });
  } catch (err) {
    await proc?.[Symbol.asyncDispose]();
    throw err;
  } finally {
    stopWriting = true;
    await writing;
  }
  await using running = proc!;

  // Every committed change exactly once: one insert per row, `v` updates of each row.
  const rows = await s.rows();
  const want = rows.length + rows.reduce((n, r) => n + r.v, 0);
  let evs: ChangeEvent[] = [];
  await waitFor(() => (evs = readJsonl(out)).length >= want, { timeoutMs: 60_000, what: `the jsonl sink to hold ${want} events (has ${evs.length})` });
  await new Promise((r) => setTimeout(r, 1000)); // a duplicate would show up as an extra line
  evs = readJsonl(out);
  assert.ok(running.running, `the process never exited:\n${running.stderr.slice(-3000)}`);

  const byId = new Map<number, ChangeEvent[]>();
  for (const e of evs) {
    const id = Number((e.key as { id: number }).id);
    byId.set(id, [...(byId.get(id) ?? []), e]);
  }
  assert.equal(evs.length, want, `${want} committed changes, ${evs.length} events`);
  assert.deepEqual([...byId.keys()].sort((a, b) => a - b), rows.map((r) => r.id).sort((a, b) => a - b), 'events for exactly the rows that committed');
  for (const r of rows) {
    const e = byId.get(r.id)!;
    assert.deepEqual(e.map((x) => x.op), ['c', ...Array<string>(r.v).fill('u')], `row ${r.id}: one insert, then ${r.v} updates, in order`);
    assert.equal(Number(e[e.length - 1]!.after!.v), r.v, `row ${r.id}: the last event holds the row's value`);
  }

  // One log line when the database is lost and one when it is back, per outage: no line per retry.
  const log = running.stdout + running.stderr;
  const lost = log.match(/"msg":"(source lost|cannot reach the database)[^"]*"/g) ?? [];
  const back = log.match(/"msg":"source back after [0-9.]+ s[^"]*"/g) ?? [];
  assert.equal(lost.length, 4, `one "lost" line per outage (down at start, during start-up, crash, clean):\n${lost.join('\n')}`);
  assert.equal(back.length, 4, `one "back" line per outage:\n${back.join('\n')}`);
  // The second outage began inside the start-up: the database was back (preflight passed),
  // lost, and back again before the pipeline first ran.
  const order = (re: RegExp) => log.search(re);
  const firstRunning = order(new RegExp(`"msg":"pipeline ${s.name} running`));
  assert.ok(order(/"msg":"source lost/) < firstRunning && log.indexOf(back[1]!) < firstRunning, 'the second outage hit the pipeline during its start-up');
  assert.equal(await running.kill('SIGTERM'), 0, 'a SIGTERM stop drains and exits 0');
  console.log(
    `# ${s.label} restarts: ${rows.length} rows, ${want} committed changes (${attempted} statements tried, ${failed} failed during outages); jsonl ${evs.length} events, each change once; 4 outages, the process never exited\n# ${notes.join('\n# ')}\n# ${back.map((b) => b.slice(7, -1)).join('; ')}`,
  );
}
