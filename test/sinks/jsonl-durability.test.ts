/**
 * The jsonl sink's durability points: one fsync per completed transaction (batches that end
 * inside a transaction are synced with it, or by checkpoint()), and what is written without
 * a checkpoint is truncated away on the next open.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import jsonl from '../../sinks/jsonl/index.js';
import type { SinkCheckpoint, SinkEvent, SinkInstance } from '../../src/sdk/index.js';
import { makeSinkEvent } from '../../src/testing/index.js';
import type { ChangeEvent } from '../../src/core/event.js';

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

async function sink(path: string, checkpoint: SinkCheckpoint): Promise<SinkInstance> {
  const s = await jsonl.create(jsonl.config.parse({ path }), {
    logger: pino({ level: 'silent' }),
    metrics: { inc() {}, set() {} },
    signal: new AbortController().signal,
    pipeline: 'p',
    sinkName: 's',
    stateDir: dir,
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
      assert.deepEqual(state, { offset: Buffer.byteLength(tenLines) }, 'the checkpoint offset is the end of the transaction, in bytes');
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
});
