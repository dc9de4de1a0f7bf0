import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SegmentLog } from '../../src/log/segment-log.js';
import { keyRangeOf } from '../../src/log/json-scan.js';
import type { DecodedEvent, DecodedRecord } from '../../src/log/format.js';
import { TargetedRows } from '../../src/runtime/targeted-rows.js';
import { RoleLocks, checkRole, sinksFor } from '../../src/runtime/roles.js';
import { loadConfig } from '../../src/config/load.js';
import { TempDir } from '../helpers/context.js';

/** Events of transaction `pos` (ids from `first`), with a commit unless `open`. */
function txn(log: SegmentLog, pos: number, first: number, n: number, tag: string, open = false): void {
  const t = `0/${pos.toString(16).toUpperCase()}`;
  for (let i = 0; i < n; i++) {
    const env = Buffer.from(`{"op":"c","before":null,"after":{"id":${first + i},"tag":"${tag}","pad":"${'x'.repeat(200)}"},"key":{"id":${first + i}},"source":{"ts_ms":1000},"ts_ms":1000}`);
    log.appendEvent(t, i, 'public.t', 1000, env[7]!, env, ...keyRangeOf(env, 0, env.length), 0, env.length);
  }
  if (!open) log.appendCommit(t, 1000, `0/${(pos + 1).toString(16).toUpperCase()}`);
}

async function readAll(log: SegmentLog, from = log.start): Promise<DecodedRecord[]> {
  const out: DecodedRecord[] = [];
  for (let at = from; ; ) {
    const r = await log.read(at, 1000, 1 << 20);
    if (!r.records.length) return out;
    out.push(...r.records);
    at = r.next;
  }
}

const tagOf = (r: DecodedRecord) => /"tag":"(\w+)"/.exec((r as DecodedEvent).buf.toString('utf8', (r as DecodedEvent).envStart, (r as DecodedEvent).envEnd))![1];

describe('run roles: a reader in another process follows the writer', () => {
  it('sees whole transactions only, and builds its view again when a new writer recovered the log (epoch)', async () => {
    await using dir = new TempDir();
    // Small batches: a big transaction is written (and synced) in several, before its commit.
    const first = await SegmentLog.open(dir.path, { batchBytes: 1024 });
    assert.equal(first.epoch, 1);
    txn(first, 10, 0, 3, 'one');
    txn(first, 20, 100, 20, 'cut', true);
    await first.flush();
    assert.ok(first.durableEnd > 4, 'part of the open transaction is durable');
    const reader = await SegmentLog.open(dir.path, { readOnly: true });
    assert.equal(reader.durableEnd, 4, 'a reader ends at the last durable commit');
    const seen = await readAll(reader);
    assert.deepEqual(seen.map((r) => r.offset), [0, 1, 2, 3]);

    // The writer dies there (no close). The next one recovers: the open transaction is cut,
    // and it appends other records, in other batches, at the same offsets.
    const second = await SegmentLog.open(dir.path, { batchBytes: 1 << 20 });
    assert.equal(second.epoch, 2);
    assert.equal(second.durableEnd, 4);
    txn(second, 30, 200, 5, 'two');
    await second.flush();
    await reader.refresh();
    assert.equal(reader.epoch, 2);
    assert.equal(reader.durableEnd, 10);
    const after = await readAll(reader, 4);
    assert.deepEqual(after.filter((r) => r.kind === 'event').map(tagOf), ['two', 'two', 'two', 'two', 'two']);
    assert.equal(after[after.length - 1]!.kind, 'commit');
    await reader.close();
    await second.close();
    await first.close().catch(() => undefined);
  });
});

describe('run roles: a reader whose files are cut under it', () => {
  it('ends a read at the cut when a new writer recovers the log under its view, then follows the new epoch', async () => {
    await using dir = new TempDir();
    const first = await SegmentLog.open(dir.path, { batchBytes: 1024 });
    txn(first, 10, 0, 3, 'one');
    txn(first, 20, 100, 20, 'cut', true);
    await first.flush();
    // The reader's view holds the open transaction's batches (past its durable end, offset 4).
    const reader = await SegmentLog.open(dir.path, { readOnly: true });
    assert.equal(reader.durableEnd, 4);
    // A new writer cuts them before the reader looks again. A read that goes on past the last
    // commit met an empty file there, and looped for ever (the sinks process of the roles test
    // hung, its lock no longer refreshed).
    const second = await SegmentLog.open(dir.path, { batchBytes: 1 << 20 });
    const r = await reader.read(0, 1000, 1 << 20);
    assert.deepEqual(r.records.map((x) => x.offset), [0, 1, 2, 3]);
    assert.equal(r.next, 4);
    assert.deepEqual((await reader.read(4, 1000, 1 << 20)).records, []);
    txn(second, 30, 200, 5, 'two');
    await second.flush();
    // Not yet refreshed: what the new writer put where the cut transaction was is not handed out.
    assert.deepEqual((await reader.read(2, 1000, 1 << 20)).records.map((x) => x.offset), [2, 3]);
    await reader.refresh();
    assert.equal(reader.durableEnd, 10);
    assert.deepEqual((await readAll(reader, 4)).filter((x) => x.kind === 'event').map(tagOf), ['two', 'two', 'two', 'two', 'two']);
    await reader.close();
    await second.close();
    await first.close().catch(() => undefined);
  });
});

describe('run roles: targeted snapshot rows', () => {
  it('records ranges durably, skips only the events of their own transaction for every other sink, and drops ranges a crash or retention made stale', async () => {
    await using dir = new TempDir();
    const pos = (s: string) => ({ serialize: () => s });
    const t = TargetedRows.load(dir.path);
    assert.equal(t.empty, true);
    t.add('late', 10, 15, '0/A', 0);
    t.add('late', 15, 18, '0/A', 0); // adjacent, same transaction: merged
    t.add('other', 40, 42, '0/B', 0);
    assert.deepEqual(t.list(), [{ sink: 'late', from: 10, to: 18, txn: '0/A' }, { sink: 'other', from: 40, to: 42, txn: '0/B' }]);
    assert.equal(t.skips(9, 'audit', pos('0/A')), false);
    assert.equal(t.skips(10, 'audit', pos('0/A')), true);
    assert.equal(t.skips(17, 'audit', pos('0/A')), true);
    assert.equal(t.skips(17, 'late', pos('0/A')), false, 'the target receives its rows');
    assert.equal(t.skips(17, 'audit', pos('0/C')), false, 'another transaction at those offsets (the rows never became durable) is not skipped');
    assert.equal(t.skips(18, 'audit', pos('0/A')), false);
    assert.equal(t.skips(41, 'late', pos('0/B')), true);
    const again = TargetedRows.load(dir.path);
    assert.deepEqual(again.list(), t.list(), 'stored');
    again.add('late', 60, 61, '0/D', 20);
    assert.deepEqual(TargetedRows.load(dir.path).list(), [{ sink: 'other', from: 40, to: 42, txn: '0/B' }, { sink: 'late', from: 60, to: 61, txn: '0/D' }]);
    again.truncate(0, 50);
    assert.deepEqual(TargetedRows.load(dir.path).list(), [{ sink: 'other', from: 40, to: 42, txn: '0/B' }], 'past the recovered end of the log: dropped');
    again.truncate(42, 50);
    assert.equal(TargetedRows.load(dir.path).empty, true, 'before the start of the log: dropped');
  });

  it('a reader in another process follows the ranges the writer adds; without follow it keeps what it loaded', async () => {
    await using dir = new TempDir();
    const pos = (s: string) => ({ serialize: () => s });
    const writer = TargetedRows.load(dir.path);
    const follower = TargetedRows.load(dir.path, { follow: true });
    const fixed = TargetedRows.load(dir.path);
    writer.add('late', 10, 20, '0/A', 0);
    assert.equal(follower.skips(12, 'audit', pos('0/A')), false, 'not read yet');
    follower.refresh();
    assert.equal(follower.skips(12, 'audit', pos('0/A')), true, 'refreshed: the new range is skipped');
    fixed.refresh();
    assert.equal(fixed.skips(12, 'audit', pos('0/A')), false);
    // Same size again (one digit for another): the rename still shows as a change.
    writer.truncate(0, 19);
    writer.add('late', 11, 19, '0/B', 0);
    follower.refresh();
    assert.deepEqual(follower.list(), writer.list());
    // A file it cannot read (not one the writer makes: it renames whole files into place)
    // does not make it forget the ranges, and it reads again once the file is whole.
    const known = follower.list();
    writeFileSync(join(dir.path, 'targeted.json'), '{"ranges": [');
    follower.refresh();
    assert.deepEqual(follower.list(), known, 'the ranges known so far still hold');
    assert.equal(follower.skips(12, 'audit', pos('0/A')), true);
    writer.add('late', 30, 40, '0/C', 0);
    follower.refresh();
    assert.deepEqual(follower.list(), writer.list());
  });
});

describe('run roles: a reader\'s end', () => {
  it('is its durable end, so a stored offset past a trimmed start is not clamped to 0', async () => {
    await using dir = new TempDir();
    const writer = await SegmentLog.open(dir.path, { segmentBytes: 2048 });
    for (let i = 0; i < 12; i++) txn(writer, 10 + i * 2, i * 10, 3, `t${i}`);
    await writer.flush();
    const reader = await SegmentLog.open(dir.path, { readOnly: true });
    assert.equal(reader.end, writer.durableEnd, 'not 0: a consumer is clamped to the end, and read offset 0 past retention');
    txn(writer, 100, 500, 2, 'more');
    await writer.flush();
    await reader.refresh();
    assert.equal(reader.end, writer.durableEnd);
    await reader.close();
    await writer.close();
  });
});

describe('run roles: options and locks', () => {
  async function pipeline(dir: TempDir, stream = 'log') {
    const cfg = await loadConfig([
      dir.file('p.yaml', `name: r\nsource: { type: postgres, url: postgres://x@127.0.0.1/x, tables: [public.t] }\nstream: { type: ${stream} }\nstate: { type: file, dir: ${dir.path}/state }\nsinks:\n  - { name: a, type: jsonl, path: ${dir.path}/a.jsonl }\n  - { name: b, type: jsonl, path: ${dir.path}/b.jsonl }\nhttp: { port: 0 }\n`),
    ]);
    return cfg.pipelines[0]!;
  }

  it('a role needs the log, --sink names sinks the pipeline has and goes with sinks or all', async () => {
    await using dir = new TempDir();
    const p = await pipeline(dir);
    checkRole(p, { role: 'sinks', sinks: ['b'] });
    assert.deepEqual(sinksFor(p, { role: 'sinks', sinks: ['b'] }).map((s) => s.base.name), ['b']);
    assert.deepEqual(sinksFor(p, { role: 'source', sinks: null }), []);
    assert.throws(() => checkRole(p, { role: 'sinks', sinks: ['c'] }), /TRB5023|has no sink named "c"/);
    assert.throws(() => checkRole(p, { role: 'source', sinks: ['a'] }), (e: Error & { code?: string }) => e.code === 'TRB5023');
    await using dir2 = new TempDir();
    const mem = await pipeline(dir2, 'memory');
    checkRole(mem, { role: 'all', sinks: null });
    assert.throws(() => checkRole(mem, { role: 'source', sinks: null }), (e: Error & { code?: string }) => e.code === 'TRB5022');
  });

  it('one writer and one process per sink: a second holder is refused, a released lock is free again', async () => {
    await using dir = new TempDir();
    const p = await pipeline(dir);
    const src = await RoleLocks.acquire(p, { role: 'source', sinks: null });
    const a = await RoleLocks.acquire(p, { role: 'sinks', sinks: ['a'] });
    // Another sink is free; the writer and sink a are taken (a live holder: this process).
    const b = await RoleLocks.acquire(p, { role: 'sinks', sinks: ['b'] });
    await assert.rejects(RoleLocks.acquire(p, { role: 'source', sinks: null }), (e: Error & { code?: string }) => e.code === 'TRB5020');
    await assert.rejects(RoleLocks.acquire(p, { role: 'all', sinks: null }), (e: Error & { code?: string }) => e.code === 'TRB5020');
    await b.release();
    await src.release();
    // `all` wants sink a too: refused, and it leaves nothing behind (the writer lock is free again).
    await assert.rejects(RoleLocks.acquire(p, { role: 'all', sinks: null }), (e: Error & { code?: string }) => e.code === 'TRB5021');
    const again = await RoleLocks.acquire(p, { role: 'source', sinks: null });
    await again.release();
    await a.release();
    await a.release(); // idempotent
  });
});
