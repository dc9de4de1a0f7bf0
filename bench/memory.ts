/**
 * Memory: peak RSS (VmHWM) of `tributary run` while it streams one transaction of `rows`
 * rows into jsonl, on each source. The transaction is committed before Tributary starts
 * (a backlog), so the whole of it arrives as fast as the server can send it; the stream's
 * byte budget is what keeps the process bounded. Node runs with its default heap settings,
 * as a user would run it.
 */
import { MysqlPosition } from '../connectors/mysql/position.js';
import { PgPosition } from '../connectors/postgres/position.js';
import { tributaryDrain } from './lib/drain.js';
import { jsonlSink } from './lib/pipeline-config.js';
import type { Memory } from './lib/results.js';
import { benchServerId, MY_DB, type MariadbWorkload } from './workloads/mariadb.js';
import { pubFor, type PgWorkload } from './workloads/postgres.js';

interface MemoryOptions {
  rows: number;
  cpuProf: string | null;
  log: (msg: string) => void;
}

export async function pgMemory(w: PgWorkload, o: MemoryOptions): Promise<Memory> {
  await w.createSlot('bench_mem');
  try {
    const t0 = performance.now();
    await w.insert('bench_big', 1, o.rows);
    const { markLsn } = await w.endMarker();
    o.log(`postgres: one transaction of ${o.rows} rows written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const t = await tributaryDrain({
      section: 'memory', contender: 'postgres', name: 'pg_mem', rows: o.rows, verifyJsonl: true, cpuProfDir: o.cpuProf, timeoutMs: 900_000,
      sourceYaml: `type: postgres\nurl: ${w.url}\ntables: [public.bench_big]\nslot: bench_mem\npublication: ${pubFor('bench_big')}\nsnapshot: never`,
      sinkYaml: jsonlSink,
      done: (ck) => PgPosition.parse(ck.position).lsn >= markLsn,
    });
    return { source: 'postgres', rows: o.rows, peakRssMb: t.peakRssMb, seconds: t.seconds, rowsPerSec: t.rowsPerSec, error: t.error };
  } finally {
    await w.dropSlot('bench_mem');
  }
}

export async function mariadbMemory(w: MariadbWorkload, o: MemoryOptions): Promise<Memory> {
  const start = await w.rotate();
  const t0 = performance.now();
  await w.insert('bench_big', 1, o.rows);
  const end = await w.position();
  o.log(`mariadb: one transaction of ${o.rows} rows written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const endPos = new MysqlPosition(end.file, end.pos);
  const t = await tributaryDrain({
    section: 'memory', contender: 'mariadb', name: 'my_mem', rows: o.rows, verifyJsonl: true, cpuProfDir: o.cpuProf, timeoutMs: 900_000,
    sourceYaml: `type: mysql\nurl: ${w.url}\ntables: [${MY_DB}.bench_big]\nsnapshot: never\nserver_id: ${benchServerId()}\nstart: { file: ${start.file}, pos: ${start.pos} }`,
    sinkYaml: jsonlSink,
    done: (ck) => MysqlPosition.parse(ck.resume).compare(endPos) >= 0,
  });
  return { source: 'mariadb', rows: o.rows, peakRssMb: t.peakRssMb, seconds: t.seconds, rowsPerSec: t.rowsPerSec, error: t.error };
}
