/**
 * Damage to the log, with a real `tributary run` (issue 14, "Tests that must exist: Damage"):
 * - a last segment cut mid-record (a write cut short by a crash) is cut back on restart, and
 *   nothing that was acknowledged is lost: the log, read back, still replays to the table, and
 *   holds every change once;
 * - a byte flipped in the middle of a segment stops the pipeline with TRB5001, naming the
 *   segment file, the offset and the file position; `tributary log read` says the same.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Row } from '../../src/core/event.js';
import { HEADER_BYTES, MAGIC } from '../../src/log/format.js';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { readLoggedTxns } from '../helpers/log-contents.js';
import { readJsonl, replay } from '../helpers/pipeline.js';

/** The batches of a segment file: where each starts, its length and its first offset. */
function batchesOf(file: string): { pos: number; length: number; base: number; count: number }[] {
  const b = readFileSync(file);
  const out: { pos: number; length: number; base: number; count: number }[] = [];
  for (let p = 0; p + HEADER_BYTES <= b.length; ) {
    assert.equal(b.readUInt32LE(p), MAGIC, `a batch starts at ${p}`);
    const length = b.readUInt32LE(p + 4);
    out.push({ pos: p, length, base: b.readDoubleLE(p + 16), count: b.readUInt32LE(p + 24) });
    p += length;
  }
  return out;
}

describe('a damaged log, with a real process', { concurrency: false }, () => {
  it('a last segment cut mid-record recovers on restart and loses nothing acknowledged; a flipped byte mid-segment is TRB5001 naming segment and offset', { timeout: 180_000 }, async () => {
    await using db = await PgTestDb.create('logdamage');
    await using dir = new TempDir('tributary-logdamage-');
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)');
    const name = `ld_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const out = join(dir.path, 'audit.jsonl');
    const cfg = dir.file(
      'pipeline.yaml',
      `name: ${name}
source:
  type: postgres
  url: ${db.url}
  tables: [public.t]
  snapshot: never
  heartbeat_ms: 0
state: { type: file, dir: ${dir.path}/state }
sinks:
  - { name: audit, type: jsonl, path: ${out} }
http: { port: 0 }
`,
    );
    const running = new RegExp(`pipeline ${name} running`);
    const logDir = join(dir.path, 'state', name, 'log');
    const segment = () => join(logDir, readdirSync(logDir).filter((f) => f.endsWith('.log')).sort().at(-1)!);
    let changes = 0;
    const txn = async (i: number) => {
      // Three changes per transaction: an upsert of two rows and a delete of an older one.
      await db.query(`BEGIN; INSERT INTO t VALUES (${i}, ${i}), (${i + 1000}, ${i}) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v; DELETE FROM t WHERE id = ${i - 3}; COMMIT`);
      changes += 2 + (i > 3 ? 1 : 0);
    };
    const table = async () => new Map((await db.query<Row>('SELECT id, v FROM t ORDER BY id')).rows.map((r) => [JSON.stringify({ id: r.id }), r]));
    const sinkHolds = (n: number) => waitFor(() => readJsonl(out).length >= n, { timeoutMs: 60_000, what: `${n} events in the jsonl sink (it has ${readJsonl(out).length})` });

    let proc = TributaryProcess.start(['run', '--config', cfg]);
    try {
      await proc.waitForLog(running, 60_000);
      for (let i = 1; i <= 15; i++) await txn(i);
      await sinkHolds(changes);
      // A sink reads only what the log holds durably, which is what the database was
      // acknowledged for: these events must all survive the damage.
      const acknowledged = readJsonl(out).map((e) => JSON.stringify(e));
      await proc.kill('SIGKILL');

      // A torn tail: the start of a batch the crash cut short (here, the first half of a copy
      // of the last batch, as a write of the next one that reached the disk only in part).
      const seg = segment();
      const batches = batchesOf(seg);
      assert.ok(batches.length >= 10, `the segment holds ${batches.length} batches`);
      const last = batches.at(-1)!;
      const bytes = readFileSync(seg);
      const sizeBefore = bytes.length;
      appendFileSync(seg, bytes.subarray(last.pos, last.pos + Math.floor(last.length / 2)));

      proc = TributaryProcess.start(['run', '--config', cfg]);
      await proc.waitForLog(running, 60_000);
      assert.match(proc.stderr, /cut a torn tail off the log/, 'the restart says it cut the torn tail');
      assert.equal(readFileSync(seg).length >= sizeBefore, true, 'nothing before the torn bytes was cut');
      for (let i = 16; i <= 25; i++) await txn(i);
      await sinkHolds(changes);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await proc.kill('SIGTERM'), 0, proc.stderr.slice(-2000));

      const want = await table();
      const audit = readJsonl(out);
      assert.equal(audit.length, changes, 'the sink holds every change once');
      assert.deepEqual(replay(audit), want, 'the sink replays to the table');
      // The log itself: every change once, in commit order (checked by the reader), replaying
      // to the table; the transactions acknowledged before the damage are all there.
      const logged = await readLoggedTxns(join(dir.path, 'state'), name, 'postgres');
      const events = logged.txns.flatMap((t) => t.events);
      assert.equal(events.length, changes, 'the log holds every change once');
      assert.deepEqual(events.map((e) => JSON.stringify(e)), audit.map((e) => JSON.stringify(e)), 'the log and the sink hold the same events in the same order');
      assert.deepEqual(replay(events), want, 'the log replays to the table');
      assert.deepEqual(events.slice(0, acknowledged.length).map((e) => JSON.stringify(e)), acknowledged, 'everything acknowledged before the torn write is still in the log');

      // A flipped byte in a batch with valid batches after it: damage, not a torn tail.
      const after = batchesOf(seg);
      const victim = after[Math.floor(after.length / 2)]!;
      const b = readFileSync(seg);
      b[victim.pos + HEADER_BYTES + 7]! ^= 0x20;
      writeFileSync(seg, b);
      proc = TributaryProcess.start(['run', '--config', cfg]);
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([proc.exited, new Promise<'running'>((r) => (timer = setTimeout(() => r('running'), 60_000)))]);
      clearTimeout(timer);
      assert.notEqual(code, 'running', 'the pipeline stops on a damaged log');
      assert.notEqual(code, 0);
      assert.match(proc.stderr, /TRB5001/);
      assert.ok(proc.stderr.includes(seg), `the error names the segment ${seg}: ${proc.stderr.slice(-1500)}`);
      assert.match(proc.stderr, new RegExp(`at offset ${victim.base} \\(file position ${victim.pos}\\)`), 'and the offset and file position of the damaged batch');
      assert.doesNotMatch(proc.stderr, /cut a torn tail/, 'damage in the middle is never cut away as a torn tail');
      assert.equal(readFileSync(seg).length, b.length, 'the damaged segment is left as it is');
      const read = await TributaryProcess.run(['log', 'read', '--config', cfg], { timeoutMs: 60_000 });
      assert.notEqual(read.code, 0);
      assert.match(read.stderr, /TRB5001/);
      assert.match(read.stderr, new RegExp(`at offset ${victim.base}\\b`));
      console.log(`# log damage: torn tail of ${Math.floor(last.length / 2)} bytes cut on restart, ${changes} changes in the log and the sink = table; flipped byte at offset ${victim.base} (file position ${victim.pos}): run exited ${code} with TRB5001`);
    } finally {
      await proc.kill('SIGKILL');
    }
  });
});
