/**
 * Snapshot: Tributary `snapshot: initial_only` with 2 workers into jsonl (timed from spawn
 * to its exit, which comes once the snapshot is durable), against the database's own bulk
 * export to /dev/null: `COPY (SELECT * FROM t) TO STDOUT` through psql, and
 * `mariadb --quick -e 'SELECT * FROM t'`.
 */
import { MysqlConnector } from '../../connectors/mysql/source.js';
import { benchPipeline, jsonlSink } from '../lib/pipeline-config.js';
import { TributaryRun, countLines, cpuRound, peerFigures, serverCpu, timeCommand, which } from '../lib/proc.js';
import { errText, mb, rate, type Throughput } from '../lib/results.js';
import { benchServerId, MY_DB, type MariadbWorkload } from '../workloads/mariadb.js';
import { pubFor, type PgWorkload } from '../workloads/postgres.js';
import { line } from './postgres.js';

interface SnapOptions {
  cpuProf: string | null;
  log: (msg: string) => void;
}

async function tributarySnapshot(section: string, name: string, sourceYaml: string, rows: number, server: string, o: SnapOptions): Promise<Throughput> {
  const base: Throughput = { section, contender: 'Tributary initial_only, 2 workers → jsonl', role: 'tributary' };
  using p = benchPipeline(name, sourceYaml, jsonlSink);
  const server0 = serverCpu(server);
  await using run = new TributaryRun(p.config, { cpuProfDir: o.cpuProf });
  try {
    const code = await run.wait(900_000);
    const seconds = run.elapsed();
    const serverCpuSeconds = cpuRound(serverCpu(server) - server0);
    if (code !== 0) throw new Error(`exit ${code}: ${run.stderr.slice(-1500)}`);
    const lines = await countLines(p.out);
    if (lines !== rows) throw new Error(`jsonl holds ${lines} rows, expected ${rows}`);
    return { ...base, rows, seconds, rowsPerSec: rate(rows, seconds), peakRssMb: mb(run.peakRss()), cpuSeconds: cpuRound(run.cpuSeconds()), serverCpuSeconds };
  } catch (err) {
    return { ...base, error: errText(err) };
  }
}

export async function pgSnapshot(w: PgWorkload, o: SnapOptions): Promise<Throughput[]> {
  const section = 'snapshot-pg';
  const rows = Number((await w.client.query<{ n: string }>('SELECT count(*) AS n FROM bench_rows')).rows[0]!.n);
  o.log(`postgres snapshot of bench_rows: ${rows} rows`);
  const out: Throughput[] = [];
  try {
    out.push(await tributarySnapshot(section, 'pg_snap', `type: postgres\nurl: ${w.url}\ntables: [public.bench_rows]\nslot: bench_snap\npublication: ${pubFor('bench_rows')}\nsnapshot: initial_only\nsnapshot_workers: 2`, rows, 'postgres', o));
  } finally {
    await w.dropSlot('bench_snap');
  }
  o.log(line(out.at(-1)!));
  const peer = 'COPY (SELECT * FROM t) TO STDOUT (psql → /dev/null)';
  const psql = which('psql');
  if (!psql) out.push({ section, contender: peer, role: 'peer', skipped: 'psql is not on the PATH (apt-get install postgresql-client)' });
  else {
    const server0 = serverCpu('postgres');
    const r = await timeCommand(psql, [w.url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'COPY (SELECT * FROM bench_rows) TO STDOUT'], { discardStdout: true });
    out.push(r.code === 0 ? { section, contender: peer, role: 'peer', ...peerFigures(r, rows, 'postgres', server0) } : { section, contender: peer, role: 'peer', error: `exit ${r.code}: ${r.stderr.slice(-300)}` });
  }
  o.log(line(out.at(-1)!));
  return out;
}

/** Why Tributary cannot snapshot MariaDB yet, or null when it can. */
export function mysqlSnapshotMissing(): string | null {
  return typeof (MysqlConnector.prototype as { snapshots?: unknown }).snapshots === 'function'
    ? null
    : 'connectors/mysql/source.ts has no snapshots() method yet: Tributary cannot snapshot MySQL/MariaDB';
}

export async function mariadbSnapshot(w: MariadbWorkload, o: SnapOptions): Promise<Throughput[]> {
  const section = 'snapshot-mysql';
  const [[c]] = (await (await w.ready()).query('SELECT COUNT(*) AS n FROM bench_rows')) as unknown as [[{ n: number }]];
  const rows = Number(c.n);
  o.log(`mariadb snapshot of bench_rows: ${rows} rows`);
  const out: Throughput[] = [];
  const missing = mysqlSnapshotMissing();
  if (missing) out.push({ section, contender: 'Tributary initial_only, 2 workers → jsonl', role: 'tributary', skipped: missing });
  else out.push(await tributarySnapshot(section, 'my_snap', `type: mysql\nurl: ${w.url}\ntables: [${MY_DB}.bench_rows]\nserver_id: ${benchServerId()}\nsnapshot: initial_only\nsnapshot_workers: 2`, rows, 'mariadbd', o));
  o.log(line(out.at(-1)!));
  const peer = "mariadb --quick -e 'SELECT * FROM t' (→ /dev/null)";
  const cli = which('mariadb') ?? which('mysql');
  if (!cli) out.push({ section, contender: peer, role: 'peer', skipped: 'neither mariadb nor mysql is on the PATH (apt-get install mariadb-client)' });
  else {
    const u = new URL(w.url);
    const args = [`--host=${u.hostname}`, `--port=${u.port || 3306}`, `--user=${decodeURIComponent(u.username || 'root')}`, '--protocol=tcp', '--quick', '--batch', `--database=${MY_DB}`, '-e', 'SELECT * FROM bench_rows'];
    if (u.password) args.push(`--password=${decodeURIComponent(u.password)}`);
    const server0 = serverCpu('mariadbd');
    const r = await timeCommand(cli, args, { discardStdout: true });
    out.push(r.code === 0 ? { section, contender: peer, role: 'peer', ...peerFigures(r, rows, 'mariadbd', server0) } : { section, contender: peer, role: 'peer', error: `exit ${r.code}: ${r.stderr.slice(-300)}` });
  }
  o.log(line(out.at(-1)!));
  return out;
}
