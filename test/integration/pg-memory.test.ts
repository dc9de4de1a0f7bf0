import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { countLines, vm } from '../helpers/memory.js';
import { PgTestDb, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';

const ROWS = Number(process.env.TRIBUTARY_MEMORY_ROWS ?? 1_000_000);
const LIMIT_MB = 400;

/**
 * One Postgres transaction of a million rows streams through with bounded memory, with
 * default settings: the stream's byte budget pauses the replication socket and the sink
 * writes the transaction in pieces.
 */
describe('postgres: a 1M-row transaction streams with bounded memory', { concurrency: false }, () => {
  it(`delivers ${ROWS} rows of one transaction with peak RSS under ${LIMIT_MB} MB`, { timeout: 240_000 }, async () => {
    await using db = await PgTestDb.create('pgmem');
    await using dir = new TempDir('tributary-pgmem-');
    await db.query('CREATE TABLE big (id int PRIMARY KEY, a text, b bigint, c timestamptz, d numeric(12,2)); ALTER TABLE big REPLICA IDENTITY FULL');
    const out = dir.file('big.jsonl');
    const cfg = dir.file(
      'mem.yaml',
      `name: pgmem\nsource:\n  type: postgres\n  url: ${db.url}\n  tables: [public.big]\n  snapshot: never\nstate: { type: file, dir: ${dir.path}/state }\nsinks:\n  - { name: out, type: jsonl, path: ${out} }\nhttp: { port: 0 }\n`,
    );
    await using proc = TributaryProcess.start(['run', '--config', cfg], { env: { TRIBUTARY_LOG_LEVEL: 'warn' } });
    await waitFor(() => existsSync(`${dir.path}/state/pgmem`), { what: 'pipeline state dir' });
    await new Promise((r) => setTimeout(r, 1000));
    await db.query(`INSERT INTO big SELECT g, 'row ' || g || ' ' || repeat('x', 20), g::bigint * 1000003, '2024-01-15 10:30:00.123456+00', g / 100.0 FROM generate_series(1, ${ROWS}) g`);
    const committed = Date.now();
    await waitFor(async () => (await countLines(out)) >= ROWS, { timeoutMs: 200_000, intervalMs: 2000, what: `${ROWS} rows in the jsonl file` });
    const secs = (Date.now() - committed) / 1000;
    const peak = vm(proc.child.pid!, 'VmHWM');
    assert.equal(proc.running, true, proc.stderr.slice(-2000));
    assert.equal(await countLines(out), ROWS, 'every row exactly once');
    const mb = Math.round(peak / (1 << 20));
    console.log(`# postgres 1M-row transaction: streamed in ${secs.toFixed(1)} s (${Math.round(ROWS / secs)} rows/s); peak RSS (VmHWM) ${mb} MB`);
    assert.ok(peak < LIMIT_MB * (1 << 20), `peak RSS ${mb} MB must stay under ${LIMIT_MB} MB`);
  });
});
