/**
 * The MySQL/MariaDB preflight names each problem with its own code (they all shared TRB2101),
 * against a stand-in connection that answers SHOW GLOBAL VARIABLES and SHOW GRANTS.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type mysql from 'mysql2';
import { checkMysql } from '../../connectors/mysql/preflight.js';

/** A connection whose queries answer from `vars` and `grants`, as mysql2's callback API does. */
function server(vars: Record<string, string>, grants: string[]): mysql.Connection {
  const answer = (sql: string): unknown[] => {
    if (sql.startsWith('SHOW GLOBAL VARIABLES')) return Object.entries(vars).map(([Variable_name, Value]) => ({ Variable_name, Value }));
    if (sql === 'SHOW GRANTS') return grants.map((g) => ({ 'Grants for cdc@%': g }));
    if (sql.startsWith('SELECT CURRENT_USER()')) return [{ u: 'cdc@%' }];
    throw new Error(`unexpected query: ${sql}`);
  };
  return { query: (sql: string, cb: (err: Error | null, rows?: unknown[]) => void) => cb(null, answer(sql)) } as unknown as mysql.Connection;
}

test('every MySQL preflight problem has its own code', async () => {
  const problems = await checkMysql(
    server(
      {
        version: '8.0.36',
        log_bin: 'OFF',
        binlog_format: 'STATEMENT',
        binlog_row_image: 'MINIMAL',
        binlog_row_metadata: 'MINIMAL',
        server_id: '0',
        binlog_checksum: 'SHA256',
        gtid_mode: 'OFF',
        binlog_row_value_options: 'PARTIAL_JSON',
      },
      ['GRANT USAGE ON *.* TO `cdc`@`%`'],
    ),
    { serverId: 1234 },
  );
  const got = problems.map((p) => `${p.code} ${p.severity} ${p.message.split(/[:;(]/)[0]!.trim()}`);
  assert.deepEqual(got, [
    'TRB2101 error the binary log is off',
    'TRB2108 error binlog_format is STATEMENT',
    'TRB2109 error binlog_row_image is MINIMAL',
    'TRB2110 warning binlog_row_metadata is MINIMAL',
    'TRB2111 error server_id is 0',
    'TRB2113 error binlog_checksum SHA256 is not supported',
    'TRB2114 warning gtid_mode is OFF',
    'TRB2115 error binlog_row_value_options=PARTIAL_JSON with a non-FULL row image logs JSON diffs that cannot be applied',
    "TRB2116 error user 'cdc'@'%' lacks REPLICATION SLAVE, REPLICATION CLIENT, SELECT",
  ]);
  assert.equal(new Set(problems.map((p) => p.code)).size, problems.length, 'one code per problem');
  for (const p of problems) assert.ok(p.fix.length > 10, `${p.code} names its fix`);
});

test('a server_id clash and a server without binlog_row_metadata have their own codes', async () => {
  const problems = await checkMysql(
    server({ version: '10.4.0-MariaDB', log_bin: 'ON', binlog_format: 'ROW', binlog_row_image: 'FULL', server_id: '77', binlog_checksum: 'CRC32' }, ['GRANT ALL PRIVILEGES ON *.* TO `cdc`@`%`']),
    { serverId: 77 },
  );
  assert.deepEqual(
    problems.map((p) => `${p.code} ${p.severity}`),
    ['TRB2110 warning', 'TRB2112 error'],
  );
  assert.match(problems[1]!.message, /source\.server_id 77 equals the server's own server_id/);
});
