/**
 * MariaDB streaming: the same backlog, in a binlog range bracketed by positions, drained by
 * Tributary (jsonl, null), mariadb-binlog -v (the C decoder, to /dev/null) and
 * @vlasky/zongji (the fastest Node peer, counting rows).
 */
import { join } from 'node:path';
import { MysqlPosition } from '../../connectors/mysql/position.js';
import { tributaryDrain } from '../lib/drain.js';
import { pairedRuns } from '../lib/paired.js';
import { jsonlSink, nullSink } from '../lib/pipeline-config.js';
import { BENCH_DIST, peerFigures, serverCpu, timeCommand, which } from '../lib/proc.js';
import { errText, type Throughput } from '../lib/results.js';
import { benchServerId, MY_DB, type MariadbWorkload } from '../workloads/mariadb.js';
import { line } from './postgres.js';

export interface MyStreamingOptions {
  rows: number;
  /** Runs of the log and of the memory path each (see pairedRuns). */
  pairs: number;
  cpuProf: string | null;
  log: (msg: string) => void;
}

export async function mariadbStreaming(w: MariadbWorkload, o: MyStreamingOptions): Promise<Throughput[]> {
  const table = 'bench_rows';
  const start = await w.rotate();
  const t0 = performance.now();
  const changes = await w.streamWorkload(table, o.rows);
  const end = await w.position();
  await w.rotate(); // closes the range's last file, so a reader of it stops at its end
  const files = await w.files(start, end);
  o.log(`mariadb workload: ${changes} row changes written in ${((performance.now() - t0) / 1000).toFixed(1)} s; binlog ${start.file}:${start.pos} → ${end.file}:${end.pos}`);
  const endPos = new MysqlPosition(end.file, end.pos);
  const u = new URL(w.url);
  const out: Throughput[] = [];
  const section = 'mysql';

  const tributary = async (contender: string, name: string, sink: (out: string) => string, verifyJsonl: boolean, streamYaml?: string) =>
    tributaryDrain({
      section, contender, name, rows: changes, verifyJsonl, cpuProfDir: o.cpuProf,
      sourceYaml: `type: mysql\nurl: ${w.url}\ntables: [${MY_DB}.${table}]\nsnapshot: never\nserver_id: ${benchServerId()}\nstart: { file: ${start.file}, pos: ${start.pos} }`,
      sinkYaml: sink, streamYaml, server: 'mariadbd',
      done: (ck) => MysqlPosition.parse(ck.resume).compare(endPos) >= 0,
    });

  // The log path against the memory path: alternated, median of each (bench/lib/paired.ts).
  out.push(
    ...(await pairedRuns(
      o.pairs,
      () => tributary('Tributary binlog → log → jsonl (fsync, checkpoints)', 'my_jsonl', jsonlSink, true),
      () => tributary('Tributary binlog → memory stream → jsonl (fsync, checkpoints)', 'my_mem_jsonl', jsonlSink, true, '{ type: memory }'),
      (t) => o.log(line(t)),
    )),
  );
  if (o.pairs > 1) for (const t of out.slice(-2)) o.log(`${line(t)}  ← kept`);
  out.push(await tributary('Tributary binlog → null', 'my_null', nullSink, false));
  o.log(line(out.at(-1)!));

  const mb = which('mariadb-binlog') ?? which('mysqlbinlog');
  const mbName = 'mariadb-binlog --read-from-remote-server -v (→ /dev/null)';
  if (!mb) out.push({ section, contender: mbName, role: 'peer', skipped: 'neither mariadb-binlog nor mysqlbinlog is on the PATH (apt-get install mariadb-client)' });
  else {
    try {
      const args = ['--read-from-remote-server', `--host=${u.hostname}`, `--port=${u.port || 3306}`, `--user=${decodeURIComponent(u.username || 'root')}`, '--protocol=tcp', '-v', `--start-position=${start.pos}`, `--stop-position=${end.pos}`, ...files];
      if (u.password) args.push(`--password=${decodeURIComponent(u.password)}`);
      const server0 = serverCpu('mariadbd');
      const r = await timeCommand(mb, args, { discardStdout: true });
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.slice(-500)}`);
      out.push({ section, contender: mbName, role: 'peer', ...peerFigures(r, changes, 'mariadbd', server0) });
    } catch (err) {
      out.push({ section, contender: mbName, role: 'peer', error: errText(err) });
    }
  }
  o.log(line(out.at(-1)!));

  const zjName = '@vlasky/zongji (row events counted, no sink)';
  try {
    await import('@vlasky/zongji');
    try {
      const server0 = serverCpu('mariadbd');
      const r = await timeCommand(process.execPath, [join(BENCH_DIST, 'peers', 'zongji.js'), w.url, start.file, String(start.pos), MY_DB, table, String(changes), String(benchServerId())], { timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.slice(-500)}`);
      const got = (JSON.parse(r.stdout.trim().split('\n').pop()!) as { rows: number }).rows;
      if (got !== changes) throw new Error(`counted ${got} rows, expected ${changes}`);
      out.push({ section, contender: zjName, role: 'peer', ...peerFigures(r, changes, 'mariadbd', server0) });
    } catch (err) {
      out.push({ section, contender: zjName, role: 'peer', error: errText(err) });
    }
  } catch {
    out.push({ section, contender: zjName, role: 'peer', skipped: '@vlasky/zongji is not installed (npm install -D @vlasky/zongji)' });
  }
  o.log(line(out.at(-1)!));
  return out;
}
