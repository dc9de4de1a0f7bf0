/**
 * The rows decode worker (rows-offload.ts + rows-worker.ts) against inline decoding: for
 * every recorded binlog, the items that reach the source through the worker's ordered queue
 * must be the inline decoder's, one for one: same kinds, same order, byte-identical
 * envelopes, same `txn`/`idx`/`resume`. A corrupt rows event must fail with the same coded
 * error, after the same rows. Plus batching over several batches, backpressure and
 * reconnect generations.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SerializedChangeEvent } from '../../src/core/event.js';
import { TributaryError } from '../../src/core/errors.js';
import { BinlogDecoder, type BinlogDecoderOptions, type MysqlSourceItem } from '../../connectors/mysql/decoder.js';
import { EventType as E } from '../../connectors/mysql/event-header.js';
import { RowsOffload, type OffloadSink } from '../../connectors/mysql/rows-offload.js';
import { vectorFiles, vectorsDir } from '../helpers/env.js';

const VECTORS = vectorsDir();
const FILES = vectorFiles();

// shareAbove: Infinity: every rows event goes through the worker.
const offload = new RowsOffload({ pipeline: 'shop', batchBytes: 4096, shareAbove: Infinity });
after(() => offload.close());

type Opts = Omit<BinlogDecoderOptions, 'emit' | 'offload'>;

interface Run {
  items: MysqlSourceItem[];
  error: string | null;
  pauses: number;
}

/** The complete events of a binlog file's bytes, with their offsets. */
function events(bytes: Buffer): { ev: Buffer; off: number }[] {
  const out: { ev: Buffer; off: number }[] = [];
  let off = 4;
  while (off + 19 <= bytes.length) {
    const size = bytes.readUInt32LE(off + 9);
    if (size < 19 || off + size > bytes.length) break;
    out.push({ ev: bytes.subarray(off, off + size), off });
    off += size;
  }
  return out;
}

function errText(err: unknown): string {
  return err instanceof TributaryError ? `${err.code} ${err.message} | fix: ${err.fix} | retryable: ${err.retryable}` : `${(err as Error).name}: ${(err as Error).message}`;
}

/** Decodes `bytes` inline, or through `off`, the way the source does (feed, then deliver in order). */
async function decode(bytes: Buffer, file: string, opts: Opts, off?: RowsOffload, maxInFlightPauses?: { paused: number }): Promise<Run> {
  const run: Run = { items: [], error: null, pauses: 0 };
  let failure: Error | null = null;
  const sink: OffloadSink = {
    deliver: (i) => run.items.push(i),
    pause: () => {
      run.pauses++;
      if (maxInFlightPauses) maxInFlightPauses.paused++;
    },
    resume: () => {
      if (maxInFlightPauses) maxInFlightPauses.paused--;
    },
    fail: (err) => (failure ??= err),
  };
  off?.begin(sink);
  const dec = new BinlogDecoder({
    fallbackColumnNames: true, partialJson: 'diff', clock: () => 42, serializeTable: () => true, pipeline: 'shop', ...opts,
    file, offload: off, emit: off ? (i) => off.emit(i) : (i) => run.items.push(i),
  });
  try {
    for (const { ev, off: at } of events(bytes)) {
      if (failure) break;
      try {
        const r = dec.feed(ev, at);
        if (r) await r;
      } catch (err) {
        // As the source: an earlier rows event still in the worker fails first.
        if (off?.busy) await off.idle();
        throw failure ?? err;
      }
    }
    if (off) await off.idle();
    if (failure) throw failure;
  } catch (err) {
    run.error = errText(err);
  }
  return run;
}

function sameRuns(a: Run, b: Run, what: string): void {
  assert.equal(b.error, a.error, `${what}: same error`);
  assert.equal(b.items.length, a.items.length, `${what}: item count`);
  for (let i = 0; i < a.items.length; i++) {
    const x = a.items[i]!;
    const y = b.items[i]!;
    assert.equal(y.kind, x.kind, `${what} item ${i}: kind`);
    assert.equal(y.txn.serialize(), x.txn.serialize(), `${what} item ${i}: txn`);
    if (x.kind === 'event' && y.kind === 'event') {
      assert.equal(y.idx, x.idx, `${what} item ${i}: idx`);
      if (x.event instanceof SerializedChangeEvent) {
        assert.ok(y.event instanceof SerializedChangeEvent, `${what} item ${i}: serialized`);
        assert.equal(y.event.json, x.event.json, `${what} item ${i}: envelope bytes`);
        assert.equal(y.event.table, x.event.table);
        assert.equal(y.event.commitTsMs, x.event.commitTsMs);
      } else assert.deepEqual(JSON.stringify(y.event), JSON.stringify(x.event), `${what} item ${i}: object event`);
    } else if (x.kind === 'commit' && y.kind === 'commit') {
      assert.equal(y.resume.serialize(), x.resume.serialize(), `${what} item ${i}: resume`);
    }
  }
}

let offloadedTotal = 0;
for (const file of FILES) {
  test(`worker envelopes equal inline envelopes: ${file}`, async () => {
    const bytes = readFileSync(join(VECTORS, file));
    const inline = await decode(bytes, file, {});
    const worker = await decode(bytes, file, {}, offload);
    sameRuns(inline, worker, file);
    offloadedTotal += inline.items.filter((i) => i.kind === 'event' && i.event instanceof SerializedChangeEvent).length;
  });
}

test('the vectors did go through the worker', () => {
  assert.ok(offloadedTotal > 100, `serialized events: ${offloadedTotal}`);
});

test('worker path: pipeline name and schema hints (JSON text columns, key) reach the worker', async () => {
  const bytes = readFileSync(join(VECTORS, 'mariadb-bin.000001'));
  const opts: Opts = {
    pipeline: 'sh"op\n\u2028é',
    schemaFor: () => ({ columns: ['id', 'topic', 'event_type', 'event', 'created'], jsonColumns: ['event', 'topic'], primaryKey: ['topic', 'id'] }),
  };
  const inline = await decode(bytes, 'mariadb-bin.000001', opts);
  const off = new RowsOffload({ pipeline: opts.pipeline!, shareAbove: Infinity });
  try {
    const worker = await decode(bytes, 'mariadb-bin.000001', opts, off);
    sameRuns(inline, worker, 'hinted');
    assert.ok(worker.items.some((i) => i.kind === 'event' && i.event instanceof SerializedChangeEvent && i.event.json.includes('"event":{"foo":1}')));
  } finally {
    await off.close();
  }
});

/** Rows events of a file: offset and where the row images start (after the bitmaps). */
function rowsEvents(bytes: Buffer): { off: number; size: number }[] {
  return events(bytes)
    .filter(({ ev }) => {
      const t = ev[4]!;
      return (t >= E.WRITE_ROWS_V1 && t <= E.DELETE_ROWS_V1) || (t >= E.WRITE_ROWS_V2 && t <= E.DELETE_ROWS_V2);
    })
    .map(({ ev, off }) => ({ off, size: ev.length }));
}

test('a corrupt rows event fails with the same coded error, after the same rows, through the worker', async () => {
  let errors = 0;
  const codes = new Set<string>();
  for (const file of ['mariadb-bin.000001', 'mysql-bin.checksum-crc32', 'mysql-enum-string-set.000001', 'json-opaque.binlog']) {
    const bytes = readFileSync(join(VECTORS, file));
    // The first rows event of each type (insert, update, delete).
    const seen = new Set<number>();
    const rows = rowsEvents(bytes).filter((e) => !seen.has(bytes[e.off + 4]!) && seen.add(bytes[e.off + 4]!));
    assert.ok(rows.length > 0, file);
    // Every byte of their bodies (up to 160), set to 0xff and to 0x00 in turn.
    for (const { off, size } of rows) {
      for (let at = off + 19 + 8; at < Math.min(off + size - 4, off + 160); at++) {
        for (const v of [0xff, 0x00]) {
          if (bytes[at] === v) continue;
          const bad = Buffer.from(bytes);
          bad[at] = v;
          const opts: Opts = { verifyChecksum: false };
          const inline = await decode(bad, file, opts);
          const worker = await decode(bad, file, opts, offload);
          sameRuns(inline, worker, `${file} byte ${at}=${v}`);
          if (inline.error) {
            errors++;
            codes.add(inline.error.split(' ')[0]!);
          }
        }
      }
    }
  }
  assert.ok(errors > 20, `corruptions that failed: ${errors}`);
  assert.ok(codes.has('TRB2105'), [...codes].join(',')); // MYSQL_DECODE
});

test('many batches, backpressure over the in-flight cap, and a reconnect dropping old results', async () => {
  // The same file decoded 40 times back to back through one queue with a tiny cap and batch
  // size; with sharing, the events after the second batch are decoded inline, behind them.
  const file = 'mariadb-bin.000001';
  const bytes = readFileSync(join(VECTORS, file));
  const inline = await decode(bytes, file, {});
  const off = new RowsOffload({ pipeline: 'shop', maxInFlightBytes: 1, batchBytes: 1, shareAbove: 0 });
  try {
    const flow = { paused: 0 };
    for (let k = 0; k < 40; k++) {
      const worker = await decode(bytes, file, {}, off, flow);
      sameRuns(inline, worker, `run ${k}`);
      assert.ok(worker.pauses > 0, 'paused over the cap');
      assert.equal(flow.paused, 0, 'every pause resumed');
      flow.paused = 0;
    }
    // A connection that ends with rows still in the worker: nothing of it arrives later.
    const late: MysqlSourceItem[] = [];
    off.begin({ deliver: (i) => late.push(i), pause: () => undefined, resume: () => undefined, fail: () => undefined });
    const dec = new BinlogDecoder({ fallbackColumnNames: true, clock: () => 42, serializeTable: () => true, file, offload: off, emit: (i) => off.emit(i) });
    for (const { ev, off: at } of events(bytes)) void dec.feed(ev, at);
    assert.ok(off.busy);
    const before = late.length;
    off.begin(null);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(late.length, before, 'results of the dropped generation are not delivered');
    // And the next generation works.
    sameRuns(inline, await decode(bytes, file, {}, off), 'after reconnect');
  } finally {
    await off.close();
    await off.close(); // idempotent
  }
});
