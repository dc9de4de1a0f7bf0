import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChangeEvent } from '../../src/core/event.js';
import { TributaryProcess } from '../helpers/context.js';
import { vectorsDir } from '../helpers/env.js';

const VECTORS = vectorsDir();

describe('mysql: tributary binlog decode', { concurrency: false }, () => {
  it('prints one change event per line for a MariaDB binlog', async () => {
    const r = await TributaryProcess.run(['binlog', 'decode', `${VECTORS}/mariadb-bin.000001`]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n').filter(Boolean);
    assert.ok(lines.length > 0, 'some events');
    const evs = lines.map((l) => JSON.parse(l) as ChangeEvent);
    for (const e of evs) {
      assert.ok(['c', 'u', 'd', 't'].includes(e.op), e.op);
      assert.equal(e.source.connector, 'mysql');
      assert.equal(e.source.file, 'mariadb-bin.000001');
      assert.ok(e.after || e.before || e.op === 't');
    }
  });

  it('a binlog without column names decodes with _colN names', async () => {
    const r = await TributaryProcess.run(['binlog', 'decode', `${VECTORS}/minimal_row_metadata.000001`]);
    assert.equal(r.code, 0, r.stderr);
    const evs = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ChangeEvent);
    assert.ok(evs.length > 0);
    assert.ok(evs.some((e) => Object.keys(e.after ?? e.before ?? {}).some((k) => /^_col\d+$/.test(k))), 'fallback names');
  });

  it('a truncated file: one-line coded error on stderr, exit 1, no stack trace', async () => {
    const r = await TributaryProcess.run(['binlog', 'decode', `${VECTORS}/binlog_truncated_event.000001`], { timeoutMs: 20_000 });
    assert.equal(r.code, 1);
    const err = r.stderr.trimEnd();
    assert.equal(err.split('\n').length, 1, `one line: ${JSON.stringify(err)}`);
    assert.match(err, /^error: TRB2106 .*truncated.*\(fix: /);
    assert.doesNotMatch(err, /\bat .*\.js:\d+/);
  });

  it('a missing file: one-line error, exit 1', async () => {
    const r = await TributaryProcess.run(['binlog', 'decode', `${VECTORS}/does-not-exist.000001`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    assert.match(r.stderr, /^error: TRB2120 cannot read .*ENOENT/);
  });
});
