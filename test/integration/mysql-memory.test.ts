import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { countLines, vm } from '../helpers/memory.js';
import { TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { MysqlTestDb, uniqueServerId } from '../helpers/mysql.js';

const ROWS = Number(process.env.TRIBUTARY_MEMORY_ROWS ?? 1_000_000);
const LIMIT_MB = 400;

/**
 * One transaction of a million rows must stream through with bounded memory: the stream's
 * byte budget pauses the binlog socket, and the sink writes the transaction in pieces.
 */
describe('mysql: a 1M-row transaction streams with bounded memory', { concurrency: false }, () => {
  it(`delivers ${ROWS} rows of one transaction with peak RSS under ${LIMIT_MB} MB`, { timeout: 170_000 }, async () => {
    await using db = await MysqlTestDb.create('mem');
    await using dir = new TempDir('tributary-mmem-');
    await db.query('CREATE TABLE big (id int PRIMARY KEY, a varchar(40), b bigint, c datetime(6), d decimal(12,2))');
    const name = `mmem${process.pid}`;
    const out = dir.file('big.jsonl');
    const cfg = dir.file(
      'mem.yaml',
      `name: ${name}
source:
  type: mysql
  url: ${db.url}
  tables: [${db.name}.big]
  snapshot: never
  server_id: ${uniqueServerId()}
state: { type: file, dir: ${dir.path}/state }
${process.env.TRIBUTARY_MEMORY_STREAM ? `stream: { type: memory, max_bytes: ${process.env.TRIBUTARY_MEMORY_STREAM} }` : ''}
sinks:
  - name: out
    type: jsonl
    path: ${out}
http: { port: 0 }
`,
    );
    // Default settings: the stream's byte budget (8 MiB, counted close to the real cost of
    // an entry) bounds what is retained; TRIBUTARY_MEMORY_HEAP_MB can add a V8 heap cap.
    const heapCap = process.env.TRIBUTARY_MEMORY_HEAP_MB ?? '0';
    await using proc = TributaryProcess.start(['run', '--config', cfg], {
      env: { TRIBUTARY_LOG_LEVEL: 'warn', NODE_OPTIONS: heapCap === '0' ? '' : `--max-old-space-size=${heapCap}` },
    });
    await waitFor(() => existsSync(`${dir.path}/state/${name}`) || existsSync(`${dir.path}/state`), { what: 'pipeline state dir' });
    await new Promise((r) => setTimeout(r, 1500));
    const pid = proc.child.pid!;
    const started = Date.now();
    await db.query(
      `INSERT INTO big SELECT seq, CONCAT('row ', seq, ' ', REPEAT('x', 20)), seq * 1000003, '2024-01-15 10:30:00.123456', seq / 100 FROM seq_1_to_${ROWS}`,
    );
    const committedAt = Date.now();
    let peakRss = 0;
    const sampler = setInterval(() => {
      try {
        peakRss = Math.max(peakRss, vm(pid, 'VmRSS'));
      } catch {
        /* exited */
      }
    }, 200);
    try {
      await waitFor(async () => (await countLines(out)) >= ROWS, { timeoutMs: 150_000, intervalMs: 2000, what: `${ROWS} rows in the jsonl file` });
    } finally {
      clearInterval(sampler);
    }
    const hwm = vm(pid, 'VmHWM');
    const secs = (Date.now() - committedAt) / 1000;
    assert.equal(proc.running, true, proc.stderr.slice(-2000));
    assert.equal(await countLines(out), ROWS, 'every row exactly once');
    const mb = (x: number) => Math.round(x / (1 << 20));
    console.log(`# 1M-row transaction (heap cap ${heapCap} MB): insert took ${((committedAt - started) / 1000).toFixed(1)} s, streamed in ${secs.toFixed(1)} s (${Math.round(ROWS / secs)} rows/s); peak RSS (VmHWM) ${mb(hwm)} MB, sampled max ${mb(peakRss)} MB`);
    assert.ok(hwm < LIMIT_MB * (1 << 20), `peak RSS ${mb(hwm)} MB must stay under ${LIMIT_MB} MB`);
  });
});
