/**
 * SinkEvent.version (issue 12, section 4): strictly increasing for every event of every
 * transaction, however big, and its 64-bit form for Elasticsearch and ClickHouse.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MysqlPosition } from '../../connectors/mysql/position.js';
import { PgPosition } from '../../connectors/postgres/position.js';
import { SerializedChangeEvent } from '../../src/core/event.js';
import { TributaryError } from '../../src/core/errors.js';
import { StreamEvent } from '../../src/stream/entries.js';
import { int64Version } from '../../src/sdk/index.js';
import type { Position } from '../../src/core/source.js';

const ev = {} as SerializedChangeEvent;
const at = (txn: Position, index: number) => new StreamEvent(ev, 't', txn, index, '{}', 0);

test('versions increase strictly over a 10-million-event transaction and into the next, like the fence', () => {
  const t1 = PgPosition.parse('5/0000A000');
  const t2 = PgPosition.parse('5/0000A030'); // the next commit record, 48 bytes on
  const idx = [0, 1, 65_534, 65_535, 65_536, 70_000, 9_999_999];
  const seq = [...idx.map((i) => at(t1, i)), at(t2, 0), at(t2, 1)];
  for (let i = 1; i < seq.length; i++) {
    assert.ok(seq[i]!.version > seq[i - 1]!.version, `version of ${seq[i]!.position}#${seq[i]!.index} > ${seq[i - 1]!.position}#${seq[i - 1]!.index}`);
    assert.ok(seq[i]!.fence > seq[i - 1]!.fence, 'and the fence agrees');
  }
  // An LSN past 2^47 (128 TiB of WAL) is no longer clamped into its neighbours.
  const far = PgPosition.parse('FFFF0000/00000000');
  assert.ok(at(far, 0).version > at(PgPosition.parse('8000/00000000'), 5).version);
  // MySQL: by file, then offset.
  assert.ok(at(new MysqlPosition('bin.000002', 4), 0).version > at(new MysqlPosition('bin.000001', 1_000_000), 70_000).version);
});

test('int64Version: exact below event 65,535 (the values earlier versions wrote), a tie after it, TRB3016 past 2^47', () => {
  const t = PgPosition.parse('1/0');
  const v = (i: number) => int64Version(at(t, i));
  assert.deepEqual(v(7), { version: ((1n << 32n) << 16n) | 7n, tie: false });
  assert.deepEqual(v(65_534), { version: ((1n << 32n) << 16n) | 65_534n, tie: false });
  assert.equal(v(65_535).tie, true);
  assert.equal(v(70_000).version, v(65_535).version, 'events past the 65,535th of a transaction share a version');
  assert.ok(v(70_000).version < int64Version(at(PgPosition.parse('1/30'), 0)).version, 'and stay below the next transaction');
  assert.ok(v(70_000).version <= 2n ** 63n - 1n);
  assert.throws(() => int64Version(at(new PgPosition(1n << 47n), 0)), (err: unknown) => err instanceof TributaryError && err.code === 'TRB3016');
});
