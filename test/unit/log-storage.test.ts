import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SegmentLog, joinBatches } from '../../src/log/segment-log.js';
import { writeFully } from '../../src/log/write-fully.js';
import type { SealedBatch } from '../../src/log/batch-builder.js';
import { HEADER_BYTES } from '../../src/log/format.js';
import { KeyRun } from '../../src/log/key-index.js';
import { sidecarFront, writeSidecarFile } from '../../src/log/sidecar.js';
import { sidecarThread } from '../../src/log/sidecar-thread.js';
import { keyRangeOf } from '../../src/log/json-scan.js';
import type { DecodedEvent, DecodedRecord } from '../../src/log/format.js';
import { TempDir } from '../helpers/context.js';
import { TributaryError } from '../../src/core/errors.js';

/** Append one transaction of `n` events on table t (ids from `first`), committed at `ts`. */
function txn(log: SegmentLog, pos: number, first: number, n: number, ts: number, op = 'c'): void {
  const txn = `0/${pos.toString(16).toUpperCase()}`;
  for (let i = 0; i < n; i++) {
    const id = first + i;
    const env = Buffer.from(`{"op":"${op}","before":null,"after":${op === 'd' ? 'null' : `{"id":${id},"v":"${'x'.repeat(40)}${pos}"}`},"key":{"id":${id}},"source":{"ts_ms":${ts}},"ts_ms":${ts}}`);
    log.appendEvent(txn, i, 'public.t', ts, env[7]!, env, ...keyRangeOf(env, 0, env.length), 0, env.length);
  }
  log.appendCommit(txn, ts, `0/${(pos + 1).toString(16).toUpperCase()}`);
}

async function readAll(log: SegmentLog, from = log.start): Promise<DecodedRecord[]> {
  const out: DecodedRecord[] = [];
  let at = from;
  for (;;) {
    const r = await log.read(at, 1000, 1 << 20);
    if (!r.records.length) return out;
    out.push(...r.records);
    at = r.next;
  }
}

function envText(r: DecodedRecord): string {
  const e = r as DecodedEvent;
  return e.buf.toString('utf8', e.envStart, e.envEnd);
}

describe('log storage: segments, recovery, indexes', () => {
  it('appends, syncs, and reads back every record in order across segment rolls', async () => {
    await using dir = new TempDir();
    const log = await SegmentLog.open(dir.path, { segmentBytes: 16 << 10 });
    for (let t = 0; t < 200; t++) txn(log, 100 + t * 10, t * 5, 5, 1_000_000 + t);
    await log.flush();
    assert.equal(log.durableEnd, 200 * 6);
    assert.ok(log.segmentList.length > 5, `rolled into ${log.segmentList.length} segments`);
    const all = await readAll(log);
    assert.equal(all.length, 1200);
    all.forEach((r, i) => assert.equal(r.offset, i));
    assert.equal(all.filter((r) => r.kind === 'commit').length, 200);
    assert.match(envText(all[7]!), /"id":6/);
    // Small reads stop inside a batch and resume exactly there.
    const pieces: DecodedRecord[] = [];
    for (let at = 0; ; ) {
      const r = await log.read(at, 4, 1 << 20);
      if (!r.records.length) break;
      pieces.push(...r.records);
      at = r.next;
    }
    assert.deepEqual(pieces.map((r) => r.offset), all.map((r) => r.offset));
    await log.close();
    // Reopened: the same records, the sealed segments' sidecars used.
    const again = await SegmentLog.open(dir.path, { segmentBytes: 16 << 10 });
    assert.equal(again.durableEnd, 1200);
    assert.equal(again.lastCommit?.resume, `0/${(100 + 199 * 10 + 1).toString(16).toUpperCase()}`);
    assert.equal((await readAll(again)).length, 1200);
    await again.close();
  });

  it('writes sealed segments\' sidecars on a worker thread, byte for byte as on this one; keys answer meanwhile from memory', async () => {
    await using dir = new TempDir();
    const repairs: string[] = [];
    const log = await SegmentLog.open(dir.path, { segmentBytes: 16 << 10, onRepair: (m) => repairs.push(m) });
    for (let t = 0; t < 200; t++) txn(log, 100 + t * 10, t * 5, 5, 1_000_000 + t);
    await log.flush();
    const sealed = log.segmentList.slice(0, -1);
    assert.ok(sealed.length > 5);
    // Right after the rolls, before any sidecar is known to be written: every key is found.
    const key = Buffer.from('{"id":7}');
    const th = [...sealed[0]!.tables.keys()][0]!;
    assert.deepEqual(sealed[0]!.keys!.lookup(th, key).map((e) => e.offset), [8]);
    await log.sidecarsWritten();
    assert.equal(sidecarThread.onWorker, true, 'the worker thread wrote them');
    for (const seg of sealed) {
      assert.ok(statSync(seg.sidecarPath).size > 0, seg.sidecarPath);
      assert.deepEqual(seg.keys!.lookup(th, key).map((e) => e.offset), seg === sealed[0] ? [8] : []);
    }
    // The same entries written on the worker and on this thread make the same file.
    const run = new KeyRun();
    for (let i = 0; i < 3000; i++) run.add('public.t', th, i % 7 === 0 ? 1 : 0, Buffer.from(`{"id":${(i * 7919) % 1000}}`), 0, `{"id":${(i * 7919) % 1000}}`.length, i);
    const front = sidecarFront(sealed[1]!, run);
    await sidecarThread.write(join(dir.path, 'worker.idx'), front, run);
    await writeSidecarFile(join(dir.path, 'here.idx'), front, run);
    assert.ok(readFileSync(join(dir.path, 'worker.idx')).equals(readFileSync(join(dir.path, 'here.idx'))));
    await log.close();
    const again = await SegmentLog.open(dir.path, { segmentBytes: 16 << 10, onRepair: (m) => repairs.push(m) });
    assert.equal((await readAll(again)).length, 1200);
    assert.deepEqual(repairs, [], 'every sidecar was whole: none rebuilt');
    await again.close();
  });

  it('drops a transaction whose commit never reached the log, even one spanning segments', async () => {
    await using dir = new TempDir();
    const repairs: string[] = [];
    let log = await SegmentLog.open(dir.path, { segmentBytes: 8 << 10, batchBytes: 2 << 10 });
    txn(log, 10, 0, 3, 1000);
    // A big transaction, cut into many batches and segments, whose commit never comes.
    for (let i = 0; i < 400; i++) {
      const env = Buffer.from(`{"op":"u","before":null,"after":{"id":1,"i":${i},"pad":"${'y'.repeat(60)}"},"key":{"id":1},"source":{},"ts_ms":1}`);
      log.appendEvent('0/20', i, 'public.t', 2000, env[7]!, env, ...keyRangeOf(env, 0, env.length), 0, env.length);
    }
    await new Promise((r) => setTimeout(r, 50));
    await log.flush();
    assert.ok(log.durableEnd > 100, 'the unfinished transaction was written');
    assert.ok(log.segmentList.length > 2, 'and spans segments');
    // A crash now: no close. Reopen.
    log = await SegmentLog.open(dir.path, { segmentBytes: 8 << 10, batchBytes: 2 << 10, onRepair: (m) => repairs.push(m) });
    assert.equal(log.durableEnd, 4, 'only the committed transaction is left');
    assert.equal(log.lastCommit?.offset, 3);
    assert.equal(repairs.length >= 1, true);
    // The source sends the transaction again; it lands once.
    txn(log, 20, 1, 2, 2000);
    await log.flush();
    const all = await readAll(log);
    assert.equal(all.length, 7);
    await log.close();
  });

  it('cuts a torn tail (a write cut short) and keeps everything acknowledged', async () => {
    await using dir = new TempDir();
    let log = await SegmentLog.open(dir.path);
    for (let t = 0; t < 10; t++) txn(log, 10 + t, t, 1, 1000 + t);
    await log.flush();
    const durable = log.lastCommit!.offset;
    await log.close();
    const seg = join(dir.path, readdirSync(dir.path).find((f) => f.endsWith('.log'))!);
    // The next transaction's batch, written halfway when the process died.
    const tail = readFileSync(seg).subarray(0, 60);
    writeFileSync(seg, Buffer.concat([readFileSync(seg), tail]));
    const repairs: string[] = [];
    log = await SegmentLog.open(dir.path, { onRepair: (m) => repairs.push(m) });
    assert.equal(log.lastCommit!.offset, durable);
    assert.equal((await readAll(log)).length, 20);
    assert.ok(repairs.some((m) => /torn tail/.test(m)), repairs.join('; '));
    await log.close();
    // Cut mid-record inside the last batch itself: that transaction was not acknowledged
    // (the head file says what was), so it goes; the earlier ones stay.
    const size = statSync(seg).size;
    truncateSync(seg, size - 5);
    writeFileSync(join(dir.path, 'head'), Buffer.alloc(0));
    log = await SegmentLog.open(dir.path);
    assert.equal(log.lastCommit!.offset, durable - 2);
    await log.close();
  });

  it('a flipped byte in the middle of a segment is a coded error naming the segment and offset', async () => {
    await using dir = new TempDir();
    let log = await SegmentLog.open(dir.path);
    for (let t = 0; t < 50; t++) txn(log, 10 + t, t, 2, 1000 + t);
    await log.flush();
    await log.close();
    const seg = join(dir.path, readdirSync(dir.path).find((f) => f.endsWith('.log'))!);
    const b = readFileSync(seg);
    b[Math.floor(b.length / 2)] ^= 0x40;
    writeFileSync(seg, b);
    await assert.rejects(SegmentLog.open(dir.path), (err: unknown) => {
      assert.ok(err instanceof TributaryError);
      assert.equal(err.code, 'TRB5001');
      assert.match(err.message, /segment .*00000000000000000000\.log, at offset \d+ \(file position \d+\)/);
      return true;
    });
  });

  it('refuses to open when acknowledged data is missing (head says more was durable)', async () => {
    await using dir = new TempDir();
    let log = await SegmentLog.open(dir.path);
    for (let t = 0; t < 5; t++) txn(log, 10 + t, t, 1, 1000 + t);
    await log.flush();
    await log.close();
    const seg = join(dir.path, readdirSync(dir.path).find((f) => f.endsWith('.log'))!);
    truncateSync(seg, statSync(seg).size - 3);
    await assert.rejects(SegmentLog.open(dir.path), /committed data is missing/);
  });

  it('finds the first transaction committed after a time, with the time index', async () => {
    await using dir = new TempDir();
    const log = await SegmentLog.open(dir.path, { segmentBytes: 8 << 10 });
    for (let t = 0; t < 300; t++) txn(log, 10 + t, t, 2, 10_000 + t * 10);
    await log.flush();
    assert.equal(await log.offsetAfterTime(0), 0);
    assert.equal(await log.offsetAfterTime(10_000), 3, 'txn 0 (offsets 0-2) committed at 10000');
    assert.equal(await log.offsetAfterTime(10_005), 3);
    assert.equal(await log.offsetAfterTime(10_000 + 150 * 10), 151 * 3);
    assert.equal(await log.offsetAfterTime(99_999_999), 900);
    await log.close();
  });

  it('finds the first transaction at or after a source position', async () => {
    await using dir = new TempDir();
    const log = await SegmentLog.open(dir.path, { segmentBytes: 8 << 10 });
    for (let t = 0; t < 100; t++) txn(log, 16 + t * 16, t, 1, 1000 + t);
    await log.flush();
    const lsn = (s: string) => BigInt('0x' + s.split('/')[1]);
    const cmp = (a: string, b: string) => (lsn(a) < lsn(b) ? -1 : lsn(a) > lsn(b) ? 1 : 0);
    assert.equal(await log.offsetAtPosition('0/10', cmp), 0);
    assert.equal(await log.offsetAtPosition('0/11', cmp), 2);
    assert.equal(await log.offsetAtPosition(`0/${(16 + 50 * 16).toString(16)}`, cmp), 100);
    assert.equal(await log.offsetAtPosition('0/FFFFF', cmp), 200);
    await log.close();
  });

  it('retention removes whole old segments, keeps what consumers need, and obeys the size cap', async () => {
    await using dir = new TempDir();
    const log = await SegmentLog.open(dir.path, { segmentBytes: 4 << 10 });
    for (let t = 0; t < 200; t++) txn(log, 10 + t, t, 2, 1000 + t);
    await log.flush();
    const n = log.segmentList.length;
    // Everything is old, but a consumer is still at offset 100.
    let removed = await log.retain({ now: 1_000_000, maxAgeMs: 1000, keepFrom: 100 });
    assert.ok(removed.length > 0);
    assert.ok(log.start <= 100, `start ${log.start} keeps offset 100`);
    assert.ok(removed.every((s) => s.next <= 100));
    await assert.rejects(log.read(0, 10, 1 << 20), (e: unknown) => (e as TributaryError).code === 'TRB5002');
    // The size cap wins over consumers.
    removed = await log.retain({ now: 1_000_000, maxBytes: 8 << 10, keepFrom: 0 });
    assert.ok(log.bytes <= (8 << 10) + (4 << 10), `bytes ${log.bytes}`);
    assert.ok(log.segmentList.length < n);
    const rest = await readAll(log);
    assert.equal(rest[rest.length - 1]!.offset, 599);
    await log.close();
  });

  it('a reader in another process sees only what is durable, and new segments as they come', async () => {
    await using dir = new TempDir();
    const writer = await SegmentLog.open(dir.path, { segmentBytes: 4 << 10 });
    const reader = await SegmentLog.open(dir.path, { readOnly: true });
    assert.equal(reader.durableEnd, 0);
    for (let t = 0; t < 50; t++) txn(writer, 10 + t, t, 2, 1000 + t);
    await writer.flush();
    await reader.refresh();
    assert.equal(reader.durableEnd, 150);
    const got = await readAll(reader);
    assert.equal(got.length, 150);
    for (let t = 50; t < 100; t++) txn(writer, 10 + t, t, 2, 1000 + t);
    await writer.flush();
    await reader.refresh();
    assert.equal((await readAll(reader, 150)).length, 150);
    await reader.close();
    await writer.close();
  });

  it('compresses batches with zstd and reads them back', async () => {
    await using dir = new TempDir();
    // A small budget: appends wait for drained(), which must come although the compressed
    // batches are smaller than what was queued.
    const log = await SegmentLog.open(dir.path, { compression: 'zstd', batchBytes: 8 << 10, maxPendingBytes: 16 << 10 });
    let waits = 0;
    for (let t = 0; t < 20; t++) {
      txn(log, 10 + t, t * 50, 50, 1000 + t);
      if (!log.appendCommit(`0/${(2000 + t).toString(16)}`, 1000 + t, `0/${(2001 + t).toString(16)}`)) {
        waits++;
        await log.drained();
      }
    }
    assert.ok(waits > 0, 'the budget was hit');
    await log.flush();
    const plain = 20 * 50 * 140;
    assert.ok(log.bytes < plain / 3, `compressed to ${log.bytes} bytes`);
    const all = await readAll(log);
    assert.equal(all.length, 20 * 52);
    assert.match(envText(all[0]!), /^\{"op":"c"/);
    await log.close();
    const again = await SegmentLog.open(dir.path, { compression: 'zstd' });
    assert.equal((await readAll(again)).length, 20 * 52);
    await again.close();
  });

  it('with zstd, joins the small batches of one flush into one (many commits in a batch), and reads, looks up and recovers them', async () => {
    await using dir = new TempDir();
    const log = await SegmentLog.open(dir.path, { compression: 'zstd', maxPendingBytes: 64 << 20 });
    // 400 transactions of 3 events, appended at once: one flush, 400 batches queued.
    for (let t = 0; t < 400; t++) txn(log, 10 + t, t * 3, 3, 1000 + t);
    await log.flush();
    const seg = log.segmentList[log.segmentList.length - 1]!;
    const batches: number[] = [];
    for (let pos = 0; pos < seg.size; ) {
      const len = seg.readSync(pos, 8).readUInt32LE(4);
      batches.push(len);
      pos += len;
    }
    assert.ok(batches.length < 40, `400 commits in ${batches.length} batches`);
    const all = await readAll(log);
    assert.deepEqual(all.map((r) => r.offset), Array.from({ length: 1600 }, (_, i) => i));
    assert.equal(all.filter((r) => r.kind === 'commit').length, 400);
    // From inside a joined batch, and one record at a time.
    assert.deepEqual((await log.read(802, 5, 1 << 20)).records.map((r) => r.offset), [802, 803, 804, 805, 806]);
    for (const at of [1, 4, 799, 1599]) assert.equal((await log.readRecord(at))?.offset, at);
    assert.equal(envText((await log.readRecord(801))!), envText(all[801]!));
    assert.equal(log.lastCommit?.offset, 1599);
    await log.close();
    // The last joined batch's write cut short before it was acknowledged (the head file says
    // what was; emptied here): recovery cuts all of that batch's transactions, and keeps the
    // batches before it whole.
    const file = seg.path;
    const lastStart = batches.slice(0, -1).reduce((a, b) => a + b, 0);
    truncateSync(file, statSync(file).size - 7);
    writeFileSync(join(dir.path, 'head'), Buffer.alloc(0));
    const again = await SegmentLog.open(dir.path, { compression: 'zstd' });
    const kept = await readAll(again);
    assert.equal(statSync(file).size, lastStart, 'cut at the start of the torn batch');
    assert.ok(kept.length > 0 && kept.length < 1600 && kept[kept.length - 1]!.kind === 'commit', `${kept.length} records kept, ending in a commit`);
    assert.deepEqual(kept.filter((r) => r.kind === 'event').map(envText), all.slice(0, kept.length).filter((r) => r.kind === 'event').map(envText));
    assert.equal(again.lastCommit?.offset, kept.length - 1);
    await again.close();
  });
});

describe('log storage: short writes', () => {
  it('writes the rest of a write that came back short, and fails one that makes no progress', async () => {
    const file = Buffer.alloc(64, 0x2e);
    // A file handle whose writes stop after 5 bytes each time (as a nearly full disk does).
    const short = {
      writev: async (bufs: readonly NodeJS.ArrayBufferView[], position: number) => {
        const all = Buffer.concat(bufs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
        const n = Math.min(5, all.length);
        all.copy(file, position, 0, n);
        return { bytesWritten: n, buffers: bufs };
      },
    };
    await writeFully(short as never, [Buffer.from('first batch|'), Buffer.from('second|'), Buffer.from('third')], 3);
    assert.equal(file.toString('latin1', 0, 30), '...first batch|second|third...', 'every byte lands where it belongs');
    const stuck = { writev: async (bufs: readonly NodeJS.ArrayBufferView[]) => ({ bytesWritten: 0, buffers: bufs }) };
    await assert.rejects(writeFully(stuck as never, [Buffer.from('x')], 0), /made no progress/, 'a write that writes nothing is an error, not durable data');
  });
});

describe('log storage: joining batches for zstd', () => {
  it('joins only batches that end with a commit, so a joined batch never ends inside a transaction', () => {
    const part = (baseOffset: number, count: number, commit: boolean, body = 100): SealedBatch => ({
      bytes: Buffer.alloc(HEADER_BYTES + body, baseOffset),
      baseOffset,
      count,
      maxTsMs: 1000 + baseOffset,
      commit,
      resume: commit ? `r${baseOffset}` : null,
      txn: `t${baseOffset}`,
      chunk: { buf: Buffer.alloc(0), outstanding: 1, retired: false },
    });
    // Two commits, the start of a big transaction (cut, no commit), its end, and two commits.
    const parts = [part(0, 2, true), part(2, 2, true), part(4, 3, false, 40), part(7, 2, true), part(9, 2, true), part(11, 2, true)];
    const released: unknown[] = [];
    const { batches, queued } = joinBatches(parts, parts.map((b) => b.bytes.length), 1 << 20, (c) => released.push(c));
    assert.deepEqual(batches.map((b) => [b.baseOffset, b.count, b.commit]), [[0, 4, true], [4, 3, false], [7, 6, true]]);
    assert.deepEqual(queued, [2 * (HEADER_BYTES + 100), HEADER_BYTES + 40, 3 * (HEADER_BYTES + 100)]);
    assert.equal(batches[2]!.resume, 'r11', 'a joined batch resumes after its last commit');
    assert.equal(batches[2]!.bytes.length, HEADER_BYTES + 300);
    assert.equal(released.length, 3, 'the joined parts but the last are handed back at once');
    // A size cap: parts that would pass it start a new batch.
    const capped = joinBatches(parts.filter((b) => b.commit), [0, 0, 0, 0, 0], 250, () => undefined).batches;
    assert.deepEqual(capped.map((b) => [b.baseOffset, b.count]), [[0, 4], [7, 4], [11, 2]]);
  });
});

describe('key index: sorting a segment\'s entries', () => {
  it('orders by (table, h1, h2) and keeps offset order within a key, for colliding first hashes, one or many tables, and splits', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (const tables of [1, 3]) {
      const run = new KeyRun(16);
      const key = Buffer.from('{"id":1}');
      for (let i = 0; i < 5000; i++) {
        // Few distinct h1 values, so many keys collide on it and differ only in h2; big values
        // exercise the high 16 bits and unsigned comparison.
        const h1 = [3, 0x9e3779b9, 0xffffffff, rnd(1 << 20)][rnd(4)]!;
        const h2 = [rnd(5), 0x80000000 + rnd(5)][rnd(2)]!;
        run.addRaw([11, 0xfffffff0, 5][rnd(tables)]!, h1, h2, 0, i, key, 0, key.length);
      }
      const head = run.splitBelow(1234);
      for (const r of [head, run]) {
        const want = Array.from({ length: r.n }, (_, i) => i).sort((x, y) => r.table[x]! - r.table[y]! || r.h1[x]! - r.h1[y]! || r.h2[x]! - r.h2[y]! || r.offset[x]! - r.offset[y]!);
        assert.deepEqual([...r.sortedOrder()], want, `${tables} table(s), ${r.n} entries`);
      }
      assert.equal(head.n + run.n, 5000);
      assert.equal(run.offset[0], 1234, 'the run keeps the entries from the cut on');
      assert.equal(run.keys.subarray(run.keyStart[7]!, run.keyStart[7]! + run.keyLen[7]!).toString(), '{"id":1}', 'key bytes rebased after the split');
    }
  });
});
