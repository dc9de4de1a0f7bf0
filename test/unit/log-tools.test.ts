import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { MariadbGtidState, MysqlGtidSet } from '../../connectors/mysql/gtid.js';
import { MysqlPosition, mysqlPositionTarget } from '../../connectors/mysql/position.js';
import { PgPosition, pgPositionTarget } from '../../connectors/postgres/position.js';
import type { ResolvedSink } from '../../src/config/load.js';
import { readEvents } from '../../src/log/event-reader.js';
import { keyRangeOf } from '../../src/log/json-scan.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { parseTarget, resolveTarget } from '../../src/log/targets.js';
import { TimeTravel } from '../../src/log/time-travel.js';
import { liveLogView, type LogView } from '../../src/log/view.js';
import { LogRetention } from '../../src/runtime/log-retention.js';
import { positionSupport } from '../../src/runtime/positions.js';
import { planRewind } from '../../src/runtime/rewind.js';
import type { SinkCheckpointRecord } from '../../src/state/store.js';
import { LogStream } from '../../src/stream/log-stream.js';
import { TempDir } from '../helpers/context.js';

const T0 = 1_700_000_000_000;
const txnPos = (i: number) => `0/${(0x10000 + i * 0x100).toString(16).toUpperCase()}`;
const resumePos = (i: number) => `0/${(0x10000 + i * 0x100 + 0x80).toString(16).toUpperCase()}`;

/**
 * Transaction i: two events (s.a key id i%7, s.b key id i), then its commit: offsets 3i, 3i+1,
 * 3i+2 while nothing is trimmed. Committed at T0 + i s, at LSN txnPos(i), resuming at resumePos(i).
 */
function appendTxns(log: SegmentLog, from: number, to: number, t0 = T0): void {
  for (let i = from; i < to; i++) {
    const txn = txnPos(i);
    const ts = t0 + i * 1000;
    ['s.a', 's.b'].forEach((table, j) => {
      const id = j === 0 ? i % 7 : i;
      const key = Buffer.from(`{"id":${id}}`);
      const env = Buffer.from(`{"op":"c","before":null,"after":{"id":${id},"n":${i}},"key":${key},"source":{"table":"${table}","ts_ms":${ts}},"ts_ms":${ts}}`);
      log.appendEvent(txn, j, table, ts, env[7]!, env, ...keyRangeOf(env, 0, env.length), 0, env.length);
    });
    log.appendCommit(txn, ts, resumePos(i));
  }
}

const view = (log: SegmentLog): LogView => ({ log, compacted: null, close: async () => undefined });
const silent = pino({ level: 'silent' });

describe('log tools: targets, rewinds, retention', () => {
  it('reads every target form, and refuses anything else with TRB5005', async () => {
    const pg = await positionSupport('postgres');
    const my = await positionSupport('mysql');
    assert.deepEqual(parseTarget('earliest', pg), { kind: 'earliest' });
    assert.deepEqual(parseTarget('LATEST', pg), { kind: 'latest' });
    assert.deepEqual(parseTarget('1200', pg), { kind: 'offset', offset: 1200 });
    assert.deepEqual(parseTarget('2024-01-15T10:45:00.250Z', pg), { kind: 'time', ts: Date.parse('2024-01-15T10:45:00.250Z') });
    assert.deepEqual(parseTarget('2024-01-15T10:45:00+02:00', pg), { kind: 'time', ts: Date.parse('2024-01-15T08:45:00Z') });
    assert.equal(parseTarget('0/16B3748', pg).kind, 'position');
    assert.equal(parseTarget('mysql-bin.000003:1234', my).kind, 'position');
    assert.equal(parseTarget('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-57', my).kind, 'position');
    assert.equal(parseTarget('0-1-100', my).kind, 'position');
    // A MariaDB GTID shaped like a date is a time unless written gtid:…
    assert.equal(parseTarget('2024-10-15', my).kind, 'time');
    assert.equal(parseTarget('gtid:2024-10-15', my).kind, 'position');
    for (const bad of ['yesterday', 'mysql-bin.000003:1234', '-5']) {
      assert.throws(() => parseTarget(bad, pg), (e: Error & { code?: string }) => e.code === 'TRB5005' && /0\/16B3748/.test((e as { fix?: string }).fix ?? ''), bad);
    }
  });

  it('source positions: an LSN or file:pos starts at the transaction holding it; a GTID set after the transactions it names', () => {
    const pgAt = pgPositionTarget('0/10600')!;
    // Transaction 6 commits at 0/10600 and ends at 0/10680: it is the first "after" its own LSN.
    assert.equal(pgAt({ txn: txnPos(5), resume: resumePos(5) }), false);
    assert.equal(pgAt({ txn: txnPos(6), resume: resumePos(6) }), true);
    assert.equal(pgPositionTarget('not/lsn'), null);
    const pos = (file: string, p: number, gtid: string | null) => new MysqlPosition(file, p, gtid).serialize();
    const fp = mysqlPositionTarget('mysql-bin.000003:1234')!;
    assert.equal(fp({ txn: pos('mysql-bin.000003', 1000, null), resume: pos('mysql-bin.000003', 1234, null) }), false, 'ends at it: before it');
    assert.equal(fp({ txn: pos('mysql-bin.000003', 1100, null), resume: pos('mysql-bin.000003', 1300, null) }), true, 'holds it');
    assert.equal(fp({ txn: pos('mysql-bin.000002', 4, null), resume: pos('mysql-bin.000002', 9000, null) }), false, 'an older file');
    assert.equal(mysqlPositionTarget(pos('mysql-bin.000003', 1234, null))!({ txn: pos('mysql-bin.000003', 1234, null), resume: pos('mysql-bin.000003', 1400, null) }), true);
    const maria = mysqlPositionTarget('0-1-100')!;
    assert.equal(maria({ txn: pos('b.000001', 10, '0-1-99'), resume: pos('b.000001', 20, '0-1-100') }), false, 'transaction 100 itself is covered');
    assert.equal(maria({ txn: pos('b.000001', 20, '0-1-100'), resume: pos('b.000001', 30, '0-1-101') }), true);
    const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const my = mysqlPositionTarget(`${uuid}:1-57`)!;
    assert.equal(my({ txn: pos('b.000001', 10, `${uuid}:1-56`), resume: pos('b.000001', 20, `${uuid}:1-57`) }), false);
    assert.equal(my({ txn: pos('b.000001', 20, `${uuid}:1-57`), resume: pos('b.000001', 30, `${uuid}:1-58`) }), true);
    assert.ok(MysqlGtidSet.parse(`${uuid}:1-10:12-20,aaaaaaaa-71ca-11e1-9e33-c80aa9429562:5`).includes(MysqlGtidSet.parse(`${uuid}:3-8:15`)));
    assert.ok(!MysqlGtidSet.parse(`${uuid}:1-10:12-20`).includes(MysqlGtidSet.parse(`${uuid}:9-12`)), 'a hole');
    assert.ok(!MysqlGtidSet.parse(`${uuid}:1-10`).includes(MysqlGtidSet.parse('aaaaaaaa-71ca-11e1-9e33-c80aa9429562:1')));
    assert.ok(MariadbGtidState.parse('0-1-100,1-2-7').includes(MariadbGtidState.parse('0-3-90')));
    assert.ok(!MariadbGtidState.parse('0-1-100').includes(MariadbGtidState.parse('0-1-100,1-2-7')));
    assert.ok(PgPosition.parse('0/0').compare(PgPosition.parse(txnPos(0))) < 0);
  });

  it('resolves targets to transaction starts, never past the last commit (a transaction being appended is not history)', async () => {
    await using dir = new TempDir();
    const log = await SegmentLog.open(dir.path, { segmentBytes: 1024, batchBytes: 64 });
    appendTxns(log, 0, 20);
    // Half of transaction 20 reaches the disk (batches are cut at 64 bytes), its commit does not.
    const env = Buffer.from('{"op":"c","before":null,"after":{"id":99},"key":{"id":99},"source":{},"ts_ms":1}');
    log.appendEvent(txnPos(20), 0, 's.a', T0 + 20_000, env[7]!, env, ...keyRangeOf(env, 0, env.length), 0, env.length);
    await log.flush();
    assert.ok(log.segmentList.length > 3);
    assert.equal(log.durableEnd, 61);
    const pg = await positionSupport('postgres');
    const at = async (x: string, exact = false) => (await resolveTarget(view(log), parseTarget(x, pg), exact)).offset;
    assert.equal(await at('earliest'), 0);
    assert.equal(await at('latest'), 60, 'after the last commit, not at the durable end');
    assert.equal(await at(new Date(T0 + 5000).toISOString()), 18, 'transactions committed after the time');
    assert.equal(await at(new Date(T0 + 5500).toISOString()), 18);
    assert.equal(await at(new Date(T0 - 1).toISOString()), 0);
    assert.equal(await at(new Date(T0 + 99_000).toISOString()), 60);
    assert.equal(await at('19'), 18, 'an offset inside a transaction stands for its start');
    assert.equal(await at('19', true), 19, 'unless exact (paging)');
    assert.equal(await at('61'), 60);
    assert.equal(await at(txnPos(6)), 18);
    assert.equal(await at(resumePos(5)), 18);
    assert.equal(await at('0/10610'), 18, 'inside transaction 6\'s commit record: still transaction 6');
    assert.equal(await at('0/10690'), 21, 'between transactions 6 and 7: transaction 7');
    assert.equal(await at('0/1'), 0);
    // The events of a range, and of one key through the index, end at the last commit too.
    const offsets = async (f: Parameters<typeof readEvents>[1]) => {
      const out: number[] = [];
      for await (const e of readEvents(view(log), f)) out.push(e.offset);
      return out;
    };
    assert.deepEqual(await offsets({ from: 54, to: Infinity }), [54, 55, 57, 58]);
    assert.deepEqual(await offsets({ from: 0, to: Infinity, table: 's.a', key: '{"id":3}' }), [9, 30, 51]);
    assert.deepEqual(await offsets({ from: 10, to: 51, table: 's.a', key: '{"id":3}' }), [30]);
    assert.deepEqual(await offsets({ from: 0, to: Infinity, key: '{ "id" : 3 }' }), [9, 10, 30, 51]);
    await log.close();
  });

  it('a heartbeat before the first transaction (an empty commit, time unknown) does not start the history', async () => {
    await using dir = new TempDir();
    const log = await SegmentLog.open(dir.path);
    log.appendCommit('0/100', 0, '0/180');
    appendTxns(log, 1, 3);
    await log.flush();
    const tt = new TimeTravel(log, null);
    await assert.rejects(tt.cutAt(T0 + 500), (e: Error & { code?: string }) => e.code === 'TRB5003' && /before the first transaction/.test(e.message));
    assert.equal(await tt.cutAt(T0 + 1000), 4);
    assert.equal(await log.firstCommitTime(), T0 + 1000);
    await log.close();
  });

  it('a read-only reader sees the key index of a segment sealed after it read it as the active one (time travel beside a writer)', async () => {
    await using dir = new TempDir();
    const writer = await SegmentLog.open(dir.path, { segmentBytes: 2048 });
    appendTxns(writer, 0, 3);
    await writer.flush();
    const reader = await SegmentLog.open(dir.path, { readOnly: true });
    assert.equal(reader.durableEnd, 9);
    appendTxns(writer, 3, 40);
    await writer.flush();
    assert.ok(writer.segmentList.length > 3);
    await reader.refresh();
    assert.equal(reader.durableEnd, writer.durableEnd);
    const tt = new TimeTravel(reader, null);
    const cut = await tt.cutAt(T0 + 1000);
    // s.b id 1 exists only in transaction 1, in the first segment.
    assert.equal((await tt.rowAt('s.b', Buffer.from('{"id":1}'), cut))?.toString(), '{"id":1,"n":1}');
    const rows: string[] = [];
    for await (const r of tt.tableAt('s.b', cut)) rows.push(r.toString());
    assert.deepEqual(rows.sort(), ['{"id":0,"n":0}', '{"id":1,"n":1}']);
    await reader.close();
    await writer.close();
  });

  it('retention waits for the slowest sink (in this process or only in the state store) by age, and max_bytes does not', async () => {
    await using dir = new TempDir();
    const stream = await LogStream.open({ dir: dir.path, parse: (s) => PgPosition.parse(s), logger: silent, log: { segmentBytes: 1024 }, retention: { maxAgeMs: 60_000 }, compaction: { enabled: true, tombstonesMs: 1000 } });
    appendTxns(stream.log, 0, 60);
    await stream.log.flush();
    const segs = stream.log.segmentList.length;
    assert.ok(segs > 6, `${segs} segments`);
    const sink = (name: string, start: 'earliest' | 'latest' = 'earliest') => ({ base: { name, start } }) as unknown as ResolvedSink;
    const runners = { fast: { name: 'fast', offset: 180 as number | null, rebuild: false }, slow: { name: 'slow', offset: 0 as number | null, rebuild: false } };
    const stored: Record<string, SinkCheckpointRecord> = {};
    const retention = new LogRetention({
      stream,
      pipeline: 'p',
      sinks: [sink('fast'), sink('slow'), sink('elsewhere'), sink('late', 'latest')],
      runners: () => Object.values(runners),
      store: { loadSinks: async () => stored },
      logger: silent,
    });
    const now = T0 + 3_600_000;
    // "elsewhere" has no checkpoint and starts at earliest: it keeps the whole log too.
    stored.elsewhere = { position: txnPos(59), resume: resumePos(59), at: 0, offset: 180 };
    assert.equal(await retention.keepFrom(), 0);
    assert.deepEqual(await retention.runOnce(now), { removed: 0, bytes: 0 }, 'the slow sink has read nothing: everything is kept');
    runners.slow.offset = 90;
    stored.elsewhere = { position: txnPos(59), resume: resumePos(59), at: 0, offset: 60 };
    assert.equal(await retention.keepFrom(), 60, 'a sink that runs in another process, from the state store');
    const r1 = await retention.runOnce(now);
    assert.ok(r1.removed > 0);
    assert.ok(stream.log.start <= 60 && stream.log.start > 0, `start ${stream.log.start}`);
    assert.ok(stream.compacted && stream.compacted.horizon === stream.log.start);
    // A time inside the retained log: nothing newer than the horizon is lost.
    stored.elsewhere = { position: txnPos(59), resume: resumePos(59), at: 0, offset: 180 };
    runners.slow.offset = null; // a sink with no offset yet keeps from its start (earliest)
    assert.equal(await retention.keepFrom(), stream.log.start);
    await stream.close();

    // max_bytes: the oldest segments go, whatever the consumers.
    await using dir2 = new TempDir();
    const capped = await LogStream.open({ dir: dir2.path, parse: (s) => PgPosition.parse(s), logger: silent, log: { segmentBytes: 1024 }, retention: { maxAgeMs: 365 * 86_400_000, maxBytes: 3000 }, compaction: { enabled: true, tombstonesMs: 1000 } });
    appendTxns(capped.log, 0, 60);
    await capped.log.flush();
    const r = new LogRetention({ stream: capped, pipeline: 'p', sinks: [sink('slow')], runners: () => [{ name: 'slow', offset: 0, rebuild: false }], store: { loadSinks: async () => ({}) }, logger: silent });
    const out = await r.runOnce(now);
    assert.ok(out.removed > 0);
    assert.ok(capped.log.bytes - capped.log.segmentList[capped.log.segmentList.length - 1]!.size <= 3000, 'the sealed segments fit the cap');
    await assert.rejects(capped.consumer('slow', 0, 'earliest'), (e: Error & { code?: string }) => e.code === 'TRB5002');
    await capped.close();
  });

  it('plans rewinds: a target before the log\'s start is refused, earliest rebuilds from the compacted state, others keep the sink state', async () => {
    await using dir = new TempDir();
    const stream = await LogStream.open({ dir: dir.path, parse: (s) => PgPosition.parse(s), logger: silent, log: { segmentBytes: 1024 }, retention: { maxAgeMs: 60_000 }, compaction: { enabled: true, tombstonesMs: 1000 } });
    const pg = await positionSupport('postgres');
    const v = liveLogView(stream);
    const sink = { name: 'audit' };
    const plan = (to: string, stored?: SinkCheckpointRecord, count = true) => planRewind(v, pg, { pipeline: 'p', sink, stored, to, dryRun: true, count });
    await assert.rejects(plan('earliest'), (e: Error & { code?: string }) => e.code === 'TRB5010', 'an empty log');
    appendTxns(stream.log, 0, 60);
    await stream.log.flush();
    const stored: SinkCheckpointRecord = { position: txnPos(59), resume: resumePos(59), at: 1, offset: 180, state: { offset: 4242, ino: 7 } };
    const mid = await plan(new Date(T0 + 40_500).toISOString(), stored);
    assert.equal(mid.plan.offset, 123);
    assert.deepEqual(mid.record, { position: txnPos(40), resume: resumePos(40), state: { offset: 4242, ino: 7 }, at: mid.record.at, offset: 123 });
    assert.deepEqual([mid.plan.events, mid.plan.transactions, mid.plan.previousOffset, mid.plan.skippedEvents], [38, 19, 180, 0]);
    const only = await planRewind(v, pg, { pipeline: 'p', sink: { name: 'a', tables: ['s.b'] }, stored, to: '123', dryRun: true, count: true });
    assert.equal(only.plan.events, 19, 'counted through the sink\'s tables filter');
    const fwd = await plan('latest', { ...stored, offset: 150 });
    assert.deepEqual([fwd.plan.events, fwd.plan.skippedEvents, fwd.plan.skippedTransactions], [0, 20, 10]);
    const first = await plan('earliest', stored);
    assert.deepEqual([first.plan.offset, first.plan.rebuild, first.record.position], [0, false, '0/0']);

    const retention = new LogRetention({ stream, pipeline: 'p', sinks: [{ base: { name: 'audit', start: 'earliest' } } as unknown as ResolvedSink], runners: () => [{ name: 'audit', offset: 90, rebuild: false }], store: { loadSinks: async () => ({}) }, logger: silent });
    await retention.runOnce(T0 + 3_600_000);
    const start = stream.log.start;
    assert.ok(start > 0 && start <= 90 && stream.compacted?.horizon === start);
    await assert.rejects(plan('0', stored), (e: Error & { code?: string }) => e.code === 'TRB5010' && /earliest/.test((e as { fix?: string }).fix ?? ''));
    await assert.rejects(plan(new Date(T0).toISOString(), stored), (e: Error & { code?: string }) => e.code === 'TRB5010');
    await assert.rejects(plan(txnPos(0), stored), (e: Error & { code?: string }) => e.code === 'TRB5010');
    const back = await plan('earliest', stored);
    assert.deepEqual([back.plan.offset, back.plan.rebuild, back.record.position, back.record.rebuild], [start, true, '0/0', true]);
    assert.ok(back.plan.compactedRows! > 0);
    // The first retained transaction by its LSN is in the log: allowed.
    const firstTxn = start / 3;
    const atStart = await plan(txnPos(firstTxn), stored);
    assert.deepEqual([atStart.plan.offset, atStart.record.position], [start, txnPos(firstTxn - 1)], 'the transaction before it, from the compacted state');
    await stream.close();
  });
});
