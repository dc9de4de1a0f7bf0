/**
 * The jsonl sink's durability points: one fsync per completed transaction (batches that end
 * inside a transaction are synced with it, or by checkpoint()), and what is written without
 * a checkpoint is truncated away on the next open.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import jsonl from '../../sinks/jsonl/index.js';
import type { SinkCheckpoint, SinkEvent, SinkInstance } from '../../src/sdk/index.js';
import { makeSinkEvent } from '../../src/testing/index.js';
import type { ChangeEvent } from '../../src/core/event.js';
import { TributaryError } from '../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'tributary-jsonl-sync-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Count FileHandle.sync calls (every FileHandle shares one prototype). */
async function countSyncs(): Promise<{ n: number; restore(): void }> {
  const probe = await open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
  await probe.close();
  const orig = proto.sync;
  const c = {
    n: 0,
    restore: () => {
      proto.sync = orig;
    },
  };
  proto.sync = function (this: unknown) {
    c.n++;
    return orig.call(this);
  };
  return c;
}

const ev = (i: number): ChangeEvent => ({
  op: 'c',
  before: null,
  after: { id: i, name: `row ${i} ü` },
  key: { id: i },
  source: { connector: 'postgresql', name: 'p', db: 'd', schema: 'public', table: 't', ts_ms: 1, snapshot: 'true' },
  ts_ms: 2,
});

/** An event that carries its bytes, as the built-in sources make them. */
function withBytes(e: SinkEvent): SinkEvent {
  const bytes = Buffer.from(`xx${e.json}yy`);
  return {
    ...e,
    jsonByteLength: bytes.length - 4,
    writeJson: (target: Buffer, at: number) => bytes.copy(target, at, 2, bytes.length - 2),
    get json(): string {
      throw new Error('the jsonl sink must not make the string of a byte-backed event');
    },
  };
}

async function sink(path: string, checkpoint: SinkCheckpoint, o: { stateDir?: string; fsync?: boolean; log?: string[] } = {}): Promise<SinkInstance> {
  const logger = o.log ? pino({ level: 'info' }, { write: (line: string) => void o.log!.push(line) }) : pino({ level: 'silent' });
  const s = await jsonl.create(jsonl.config.parse({ path, fsync: o.fsync ?? true }), {
    logger,
    metrics: { inc() {}, set() {} },
    signal: new AbortController().signal,
    pipeline: 'p',
    sinkName: 's',
    stateDir: o.stateDir ?? dir,
  });
  await s.open?.(checkpoint);
  return s;
}

describe('jsonl durability', () => {
  it('syncs once per completed transaction, not per batch, and checkpoint() syncs what is left', async () => {
    const path = join(dir, 'a.jsonl');
    const s = await sink(path, { position: null, state: null });
    const txn = Array.from({ length: 10 }, (_, i) => withBytes(makeSinkEvent(ev(i), 1, i)));
    const c = await countSyncs();
    try {
      const signal = new AbortController().signal;
      // One transaction in five batches: four end inside it, the fifth completes it.
      for (let b = 0; b < 4; b++) await s.write(txn.slice(b * 2, b * 2 + 2), { signal, commit: null });
      assert.equal(c.n, 0, 'no fsync inside the transaction');
      await s.write(txn.slice(8), { signal, commit: txn[9]!.position });
      assert.equal(c.n, 1, 'one fsync for the transaction');
      const state = await s.checkpoint?.(txn[9]!.position);
      assert.equal(c.n, 1, 'nothing left to sync at the checkpoint');
      // The next transaction's completing batch held nothing for this sink: checkpoint() syncs.
      await s.write([withBytes(makeSinkEvent(ev(10), 2, 0))], { signal, commit: null });
      await s.checkpoint?.(makeSinkEvent(ev(10), 2, 0).position);
      assert.equal(c.n, 2, 'checkpoint() synced the batch written inside the transaction');
      const text = readFileSync(path, 'utf8');
      const tenLines = text.split('\n').slice(0, 10).join('\n') + '\n';
      assert.equal((state as { offset: number }).offset, Buffer.byteLength(tenLines), 'the checkpoint offset is the end of the transaction, in bytes');
    } finally {
      c.restore();
      await s.close();
    }
    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    assert.deepEqual(lines.map((l) => JSON.parse(l).after.id), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(lines[0], JSON.stringify(ev(0)), 'the bytes were written as they are');
  });

  it('batches written inside a transaction without a checkpoint are truncated away on reopen', async () => {
    const path = join(dir, 'b.jsonl');
    const signal = new AbortController().signal;
    const s1 = await sink(path, { position: null, state: null });
    const t1 = [makeSinkEvent(ev(1), 1, 0)];
    await s1.write(t1, { signal, commit: t1[0]!.position });
    const cp: SinkCheckpoint = { position: t1[0]!.position, state: await s1.checkpoint?.(t1[0]!.position) };
    // Transaction 2 starts, then the process "crashes" before it completes.
    await s1.write([makeSinkEvent(ev(2), 2, 0), makeSinkEvent(ev(3), 2, 1)], { signal, commit: null });
    await s1.close();
    const s2 = await sink(path, cp);
    await s2.close();
    assert.deepEqual(readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).after.id), [1]);
  });

  it('refuses (TRB3013) a non-empty file it did not write when it has no checkpoint, and leaves it intact', async () => {
    // Another pipeline's output, as when a copied config changes only `name:`.
    const path = join(dir, 'theirs.jsonl');
    const theirs = Array.from({ length: 1012 }, (_, i) => JSON.stringify(ev(i))).join('\n') + '\n';
    writeFileSync(path, theirs);
    const fresh = mkdtempSync(join(dir, 'state-'));
    await assert.rejects(
      () => sink(path, { position: null, state: undefined }, { stateDir: fresh }),
      (err: unknown) => err instanceof TributaryError && err.code === 'TRB3013' && /1012 lines|did not write/.test(err.message) && /move .* away/.test(err.fix ?? ''),
    );
    assert.equal(readFileSync(path, 'utf8'), theirs, 'not one byte was changed');
  });

  it('refuses a checkpoint that belongs to another file (another inode), and leaves that file intact', async () => {
    const path = join(dir, 'replaced.jsonl');
    const signal = new AbortController().signal;
    const s1 = await sink(path, { position: null, state: undefined });
    const t1 = [makeSinkEvent(ev(1), 1, 0)];
    await s1.write(t1, { signal, commit: t1[0]!.position });
    const cp: SinkCheckpoint = { position: t1[0]!.position, state: await s1.checkpoint?.(t1[0]!.position) };
    await s1.close();
    // Someone puts another (longer) file in its place.
    rmSync(path);
    writeFileSync(path, 'a line of someone else\n'.repeat(50));
    await assert.rejects(() => sink(path, cp), (err: unknown) => err instanceof TributaryError && err.code === 'TRB3013');
    assert.equal(readFileSync(path, 'utf8').length, 'a line of someone else\n'.length * 50);
  });

  it('a crash before the first checkpoint truncates its own lines (the claim says the file is its own)', async () => {
    const path = join(dir, 'mine.jsonl');
    const signal = new AbortController().signal;
    const s1 = await sink(path, { position: null, state: undefined });
    await s1.write([makeSinkEvent(ev(1), 1, 0), makeSinkEvent(ev(2), 1, 1)], { signal, commit: null });
    await s1.close(); // no checkpoint was ever persisted
    const s2 = await sink(path, { position: null, state: undefined });
    await s2.close();
    assert.equal(readFileSync(path, 'utf8'), '', 'its own uncommitted lines are gone; a redelivery writes them again');
  });

  it('fsync: false says at open that the file is no longer exactly-once', async () => {
    const log: string[] = [];
    const s = await sink(join(dir, 'nosync.jsonl'), { position: null, state: undefined }, { fsync: false, log });
    await s.close();
    assert.ok(log.some((l) => /fsync is off/.test(l) && /not exactly-once/.test(l)), log.join(''));
    // And the configuration reference says so.
    assert.match(String(jsonl.config.shape.fsync.description), /gives up the exactly-once promise/);
  });
});
