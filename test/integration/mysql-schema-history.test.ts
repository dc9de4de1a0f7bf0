import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { standaloneLink } from '../../src/runtime/source-link.js';
import { MysqlSource } from '../../connectors/mysql/source.js';
import { MysqlPosition } from '../../connectors/mysql/position.js';
import type { SourceItem } from '../../src/core/source.js';
import { Metrics } from '../../src/runtime/metrics.js';
import { FileStateStore } from '../../src/state/file-store.js';
import type { SinkCheckpointRecord, StateStore } from '../../src/state/store.js';
import { TempDir, waitFor } from '../helpers/context.js';
import { MysqlTestDb, uniqueServerId } from '../helpers/mysql.js';

type StoredHistory = { tables: Record<string, { at: string; def: { columns?: { name: string }[] } | null }[]> };

/** A state store whose next write of one key fails once, when armed; it remembers what was written. */
class FlakyStore implements StateStore {
  armed = false;
  failures = 0;
  /** The last schema history that reached the store. */
  stored: StoredHistory | null = null;
  constructor(
    private readonly inner: StateStore,
    private readonly key: string,
  ) {}
  loadSinks(p: string): Promise<Record<string, SinkCheckpointRecord>> {
    return this.inner.loadSinks(p);
  }
  saveSink(p: string, s: string, r: SinkCheckpointRecord): Promise<void> {
    return this.inner.saveSink(p, s, r);
  }
  get<T>(p: string, k: string): Promise<T | undefined> {
    return this.inner.get<T>(p, k);
  }
  async put(p: string, k: string, v: unknown): Promise<void> {
    if (k === this.key && this.armed) {
      this.armed = false;
      this.failures++;
      throw new Error('injected state store failure');
    }
    await this.inner.put(p, k, v);
    if (k === this.key) this.stored = structuredClone(v) as StoredHistory;
  }
  delete(p: string, k: string): Promise<void> {
    return this.inner.delete(p, k);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('mysql schema history durability', () => {
  it('a failed history write is retried, and no commit after the DDL goes out before the DDL is durable', { timeout: 120_000 }, async () => {
    await using db = await MysqlTestDb.create('hist');
    await using dir = new TempDir();
    await db.query('CREATE TABLE t (id int PRIMARY KEY, a int)');
    const store = new FlakyStore(new FileStateStore(dir.path), 'mysql-schema');
    const ac = new AbortController();
    const source = new MysqlSource(
      { type: 'mysql', url: db.url, tables: [`${db.name}.t`], server_id: uniqueServerId(), start: 'latest', heartbeat_ms: 500, snapshot: 'never', snapshot_workers: 1, snapshot_chunk_rows: 1000, reconnect: {} },
      { pipeline: 'hist', logger: pino({ level: process.env.TRIBUTARY_TEST_LOG ?? 'silent' }), signal: ac.signal, metrics: new Metrics(), store, link: standaloneLink('hist', pino({ level: 'silent' }), ac.signal) },
    );
    const hasB = (h: StoredHistory | null) => !!h?.tables[`${db.name}.t`]?.at(-1)?.def?.columns?.some((c) => c.name === 'b');
    let ddlEnd: MysqlPosition | null = null;
    const items: SourceItem[] = [];
    const early: string[] = [];
    try {
      await source.prepare(null);
      let failed: unknown = null;
      const running = source.run(null, {
        push(item) {
          items.push(item);
          // A commit at or past the DDL's end may only go out once the DDL is durable: a
          // sink's checkpoint at that commit would make a restart skip the DDL.
          if (item.kind === 'commit' && ddlEnd && item.resume.compare(ddlEnd) >= 0 && !hasB(store.stored)) early.push(item.resume.serialize());
          return true;
        },
        drained: async () => undefined,
      }).catch((err: unknown) => (failed = err));
      await db.query('INSERT INTO t VALUES (1, 1)');
      await waitFor(() => items.some((i) => i.kind === 'event'), { what: 'the first insert' });
      store.armed = true;
      await db.query('ALTER TABLE t ADD COLUMN b int');
      const [st] = await db.query<{ File: string; Position: number }[]>('SHOW MASTER STATUS');
      ddlEnd = new MysqlPosition(st!.File, Number(st!.Position), null);
      await db.query('INSERT INTO t VALUES (2, 2, 22)');
      await waitFor(() => failed || items.some((i) => i.kind === 'event' && i.event.after?.id === 2), { timeoutMs: 30_000, what: 'the insert after the DDL' });
      assert.equal(failed, null, `the source keeps running: ${String(failed)}`);
      const ev = items.find((i) => i.kind === 'event' && i.event.after?.id === 2) as Extract<SourceItem, { kind: 'event' }>;
      assert.deepEqual(ev.event.after, { id: 2, a: 2, b: 22 }, 'the row after the DDL decodes with the new column');
      await waitFor(() => items.some((i) => i.kind === 'commit' && i.resume.compare(ddlEnd!) > 0), { what: "the insert's commit" });
      assert.equal(store.failures, 1, 'the history write failed once');
      assert.ok(hasB(store.stored), 'the DDL is in the stored history (written again after the failure)');
      assert.deepEqual(early, [], 'no commit past the DDL went out before the DDL was durable');
      // A new source on the same store reads the history with the DDL in it.
      const onDisk = await new FileStateStore(dir.path).get<StoredHistory>('hist', 'mysql-schema');
      assert.ok(hasB(onDisk ?? null), 'on disk');
      process.stderr.write(`# schema history: 1 injected write failure, DDL durable before any later commit (${items.filter((i) => i.kind === 'commit').length} commits)\n`);
      ac.abort();
      await source.close();
      await running;
    } finally {
      ac.abort();
      await source.close();
    }
  });
});
