import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { BinlogStreamError, wrapConnectError } from '../../connectors/mysql/client.js';
import { ConfigError, ErrorCodes, PoisonEventError, TributaryError } from '../../src/core/errors.js';
import { classifyError, isRetryableError } from '../../src/runtime/error-class.js';
import { Metrics } from '../../src/runtime/metrics.js';
import { SourceLinkMonitor } from '../../src/runtime/source-link.js';
import { freePort } from '../helpers/servers/common.js';

/** A server error as pg and mysql2 build them: a message plus code (and errno for MySQL). */
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code, severity: 'FATAL' });
const myError = (errno: number, code: string, message: string) => Object.assign(new Error(message), { errno, code, sqlState: 'HY000', fatal: true });

/** The real error of a TCP connect to a port nothing listens on. */
async function refused(): Promise<Error> {
  const port = await freePort();
  return new Promise((resolve) => connect(port, '127.0.0.1').once('error', resolve));
}

describe('error classification (src/runtime/error-class.ts)', () => {
  it('a server that is down, restarting, shutting down or dropped the connection is transient', async () => {
    const cases: unknown[] = [
      await refused(),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }),
      Object.assign(new Error('connect EHOSTUNREACH 10.0.0.1:5432'), { code: 'EHOSTUNREACH' }),
      Object.assign(new Error('getaddrinfo EAI_AGAIN db'), { code: 'EAI_AGAIN' }),
      pgError('57P01', 'terminating connection due to administrator command'),
      pgError('57P02', 'terminating connection because of crash of another server process'),
      pgError('57P03', 'the database system is starting up'),
      pgError('57P03', 'the database system is shutting down'),
      pgError('53300', 'too many connections for database "app"'),
      pgError('55006', 'replication slot "tributary_shop" is active for PID 4242'), // a killed process's walsender still holds it
      new Error('the database system is starting up'), // no code: the message alone
      new Error('Connection terminated unexpectedly'),
      new Error('timeout expired'), // pg's connect timeout
      myError(2003, 'ECONNREFUSED', "Can't connect to MySQL server"),
      myError(2002, 'ER_CONN_HOST_ERROR', "Can't connect to local server through socket"),
      myError(2006, 'ER_SERVER_GONE_ERROR', 'MySQL server has gone away'),
      myError(2013, 'ER_SERVER_LOST', 'Lost connection to server during query'),
      myError(1053, 'ER_SERVER_SHUTDOWN', 'Server shutdown in progress'),
      myError(1927, 'ER_CONNECTION_KILLED', 'Connection was killed'),
      Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }),
      new Error("Can't add new command when connection is in closed state"),
      new BinlogStreamError('connection lost', null, 'PROTOCOL_CONNECTION_LOST'),
      new BinlogStreamError('no data and no heartbeat for 3000 ms', null, 'ETIMEDOUT'),
      new BinlogStreamError('server error 1053 (08S01): Server shutdown in progress', 1053, undefined),
      // net.connect to a name with several addresses fails with one error per address
      new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' })], ''),
      // the connectors' coded wrappers are classified by what they wrap
      new TributaryError(ErrorCodes.PG_CONNECT, 'cannot connect to Postgres: connect ECONNREFUSED', { cause: await refused(), retryable: true }),
      wrapConnectError(myError(2003, 'ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:3306')),
      new TributaryError(ErrorCodes.SINK_TARGET, 'target busy', { retryable: true }),
      Object.assign(new Error('rate limited'), { retryable: true }),
    ];
    for (const e of cases) assert.equal(classifyError(e), 'transient', String((e as Error).message ?? e));
    assert.ok(cases.every(isRetryableError));
  });

  it('a refused login is auth, also inside a coded wrapper', () => {
    const pg28P01 = pgError('28P01', 'password authentication failed for user "cdc"');
    const cases = [
      pg28P01,
      pgError('28000', 'no pg_hba.conf entry for host "10.0.0.9", user "cdc", database "app", no encryption'),
      myError(1045, 'ER_ACCESS_DENIED_ERROR', "Access denied for user 'cdc'@'localhost' (using password: YES)"),
      new TributaryError(ErrorCodes.PG_CONNECT, 'cannot connect to Postgres: password authentication failed', { cause: pg28P01, retryable: true }),
      wrapConnectError(myError(1045, 'ER_ACCESS_DENIED_ERROR', 'Access denied')),
    ];
    for (const e of cases) assert.equal(classifyError(e), 'auth', e.message);
    assert.ok(!cases.some(isRetryableError), 'a sink target that refuses a login is not retried as if it were unreachable');
  });

  it('what only a person can fix is config: it fails fast, whatever it wraps', () => {
    const cases = [
      pgError('3D000', 'database "shop" does not exist'),
      pgError('42501', 'permission denied for table orders'),
      pgError('42704', 'replication slot "x" does not exist'),
      pgError('55000', 'cannot read from logical replication slot "x": this slot has been invalidated'),
      myError(1049, 'ER_BAD_DB_ERROR', "Unknown database 'shop'"),
      myError(1227, 'ER_SPECIFIC_ACCESS_DENIED_ERROR', 'Access denied; you need the REPLICATION SLAVE privilege'),
      wrapConnectError(myError(1049, 'ER_BAD_DB_ERROR', "Unknown database 'shop'")),
      Object.assign(new TypeError('Invalid URL'), { code: 'ERR_INVALID_URL' }),
      new ConfigError(ErrorCodes.CONFIG_INVALID, 'bad field'),
      new PoisonEventError('bad row'),
      new TributaryError(ErrorCodes.PG_WAL_LEVEL, 'wal_level is replica'),
      // A coded error that says retrying cannot help is final, even around a connection error.
      new TributaryError(ErrorCodes.SOURCE_GAVE_UP, 'unreachable for too long', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) }),
    ];
    for (const e of cases) assert.equal(classifyError(e), 'config', e.message);
  });

  it('anything else is unknown (restarted from the checkpoints, not reconnected in a loop)', () => {
    for (const e of [new TypeError("Cannot read properties of undefined (reading 'lsn')"), new BinlogStreamError('unexpected packet 0x3 in the binlog stream', null, 'PROTOCOL'), pgError('XX000', 'internal error'), 'a string', null, undefined]) {
      assert.equal(classifyError(e), 'unknown', String(e));
      assert.equal(isRetryableError(e), false);
    }
  });
});

/** A SourceLinkMonitor whose log lines and metrics the test can read. */
function monitor(maxElapsedMs?: number) {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    }),
  );
  const metrics = new Metrics();
  const link = new SourceLinkMonitor({ pipeline: 'p', logger, metrics, maxElapsedMs });
  const flush = () => new Promise((r) => setImmediate(r));
  return { link, lines, metrics, flush };
}

describe('reconnect policy (src/runtime/source-link.ts)', () => {
  it('logs an outage once when it begins and once when it ends, and paces the retries', async () => {
    const { link, lines, metrics, flush } = monitor();
    const err = await refused();
    const delays = Array.from({ length: 12 }, () => link.retryDelay(err));
    await flush();
    assert.ok(delays[0]! >= 250 && delays[0]! <= 500, `first retry soon: ${delays[0]}`);
    assert.ok(delays.every((d) => d <= 5000), `capped at 5 s: ${delays}`);
    assert.ok(delays[11]! >= 2500, `backs off: ${delays}`);
    assert.equal(lines.length, 1, 'one line for 12 failed attempts');
    assert.match(lines[0]!.msg, /^cannot reach the database: connect ECONNREFUSED .*; waiting for it/);
    assert.equal(metrics.get('tributary_source_up', { pipeline: 'p' }), 0);
    assert.equal(metrics.get('tributary_source_reconnects_total', { pipeline: 'p' }), 12);
    assert.equal(link.status().attempts, 12);
    link.up();
    link.up();
    await flush();
    assert.equal(lines.length, 2);
    assert.match(lines[1]!.msg, /^source back after \d+\.\d s \(12 failed attempts\)$/);
    assert.equal(metrics.get('tributary_source_up', { pipeline: 'p' }), 1);
    // Once it has worked, a loss says "lost", and the backoff starts over.
    assert.ok(link.retryDelay(pgErrorLike('57P01')) <= 500);
    await flush();
    assert.match(lines[2]!.msg, /^source lost: terminating connection; reconnecting until it is back$/);
    link.close();
  });

  it('a refused login that never worked is TRB2200; one that worked before is retried every few minutes', () => {
    const denied = Object.assign(new Error("Access denied for user 'cdc'"), { errno: 1045, code: 'ER_ACCESS_DENIED_ERROR' });
    const fresh = monitor().link;
    assert.throws(() => fresh.retryDelay(denied), (e: unknown) => e instanceof ConfigError && e.code === 'TRB2200' && /never been accepted/.test(e.message));
    const worked = monitor().link;
    worked.up();
    const d = worked.retryDelay(denied);
    assert.ok(d >= 30_000 && d <= 60_000, `slow: ${d} ms`);
    const stored = monitor().link;
    stored.noteStoredState(); // checkpoints exist: the login worked in an earlier process
    assert.ok(stored.retryDelay(denied) >= 30_000);
    worked.close();
    stored.close();
  });

  it('errors that are not connection problems are thrown back unchanged', () => {
    const { link } = monitor();
    const bug = new TypeError('x is undefined');
    const bad = pgErrorLike('3D000');
    assert.throws(() => link.retryDelay(bug), (e) => e === bug);
    assert.throws(() => link.retryDelay(bad), (e) => e === bad);
    assert.equal(link.status().attempts, 0, 'nor counted as an outage');
  });

  it('max_elapsed gives up with TRB2201 once the source has been down that long', async () => {
    const { link } = monitor(200);
    const err = await refused();
    assert.ok(link.retryDelay(err) <= 200, 'never waits past the deadline');
    await new Promise((r) => setTimeout(r, 250));
    assert.throws(() => link.retryDelay(err), (e: unknown) => e instanceof TributaryError && e.code === 'TRB2201' && !e.retryable && classifyError(e) === 'config');
    link.close();
  });
});

function pgErrorLike(code: string): Error {
  return pgError(code, code === '57P01' ? 'terminating connection' : 'database "x" does not exist');
}
