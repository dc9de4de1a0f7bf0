/**
 * A stored checkpoint that is not this source's position (state left by a pipeline of the same
 * name with the other source type, or edited by hand) fails with TRB2202 and its fix, for
 * either source, and is not retried: reading it again cannot help.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MysqlPosition } from '../../connectors/mysql/position.js';
import { PgPosition } from '../../connectors/postgres/position.js';
import { TributaryError } from '../../src/core/errors.js';
import { classifyError } from '../../src/runtime/error-class.js';

const refused = (what: RegExp) => (err: unknown) =>
  err instanceof TributaryError && err.code === 'TRB2202' && what.test(err.message) && /own state|remove its checkpoints/.test(err.fix ?? '') && classifyError(err) === 'config';

test('a Postgres source refuses a MySQL checkpoint, and the other way round, with TRB2202', () => {
  const mysqlCheckpoint = new MysqlPosition('mysql-bin.000003', 1234, null).serialize();
  const pgCheckpoint = PgPosition.parse('0/16B3748').serialize();
  assert.throws(() => PgPosition.parse(mysqlCheckpoint), refused(/not a Postgres LSN/));
  assert.throws(() => MysqlPosition.parse(pgCheckpoint), refused(/not a MySQL position/));
  assert.throws(() => MysqlPosition.parse('{"file":"x"}'), refused(/not a MySQL position/));
});
