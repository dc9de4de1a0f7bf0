/**
 * Postgres streaming: the same backlog (N inserts then N/2 updates, REPLICA IDENTITY FULL)
 * drained from copies of one logical slot by Tributary (jsonl, null), pg_recvlogical
 * (pgoutput to /dev/null: the server's own limit) and pg-logical-replication (the Node peer).
 */
import { join } from 'node:path';
import { PgPosition } from '../../connectors/postgres/position.js';
import { tributaryDrain } from '../lib/drain.js';
import { pairedRuns } from '../lib/paired.js';
import { jsonlSink, nullSink } from '../lib/pipeline-config.js';
import { BENCH_DIST, peerFigures, serverCpu, timeCommand, which } from '../lib/proc.js';
import { errText, type Throughput } from '../lib/results.js';
import { END_PREFIX, pubFor, type PgWorkload } from '../workloads/postgres.js';

export interface PgStreamingOptions {
  rows: number;
  /** Runs of the log and of the memory path each (see pairedRuns). */
  pairs: number;
  cpuProf: string | null;
  log: (msg: string) => void;
}

export async function pgStreaming(w: PgWorkload, o: PgStreamingOptions): Promise<Throughput[]> {
  const table = 'bench_rows';
  const pub = pubFor(table);
  await w.createSlot('bench_origin');
  const t0 = performance.now();
  const changes = await w.streamWorkload(table, o.rows);
  const { markLsn, endpos } = await w.endMarker();
  o.log(`postgres workload: ${changes} row changes written in ${((performance.now() - t0) / 1000).toFixed(1)} s; WAL end ${endpos}`);
  const out: Throughput[] = [];
  const section = 'pg';

  const tributary = async (contender: string, name: string, sink: (out: string) => string, verifyJsonl: boolean, streamYaml?: string) => {
    const slot = `bench_${name}`;
    await w.copySlot('bench_origin', slot);
    try {
      return await tributaryDrain({
        section, contender, name, rows: changes, verifyJsonl, cpuProfDir: o.cpuProf,
        sourceYaml: `type: postgres\nurl: ${w.url}\ntables: [public.${table}]\nslot: ${slot}\npublication: ${pub}\nsnapshot: never`,
        sinkYaml: sink, streamYaml, server: 'postgres',
        done: (ck) => PgPosition.parse(ck.position).lsn >= markLsn,
      });
    } finally {
      await w.dropSlot(slot);
    }
  };

  // The log path against the memory path: alternated, median of each (bench/lib/paired.ts).
  out.push(
    ...(await pairedRuns(
      o.pairs,
      () => tributary('Tributary slot → log → jsonl (fsync, checkpoints)', 'pg_jsonl', jsonlSink, true),
      () => tributary('Tributary slot → memory stream → jsonl (fsync, checkpoints)', 'pg_mem_jsonl', jsonlSink, true, '{ type: memory }'),
      (t) => o.log(line(t)),
    )),
  );
  if (o.pairs > 1) for (const t of out.slice(-2)) o.log(`${line(t)}  ← kept`);
  out.push(await tributary('Tributary slot → null', 'pg_null', nullSink, false));
  o.log(line(out.at(-1)!));

  // pg_recvlogical: the walsender's pgoutput encoding plus a C client writing to /dev/null.
  const recv = which('pg_recvlogical');
  if (!recv) out.push({ section, contender: 'pg_recvlogical (pgoutput → /dev/null)', role: 'peer', skipped: 'pg_recvlogical is not on the PATH (apt-get install postgresql-client)' });
  else {
    await w.copySlot('bench_origin', 'bench_recvlogical');
    try {
      const server0 = serverCpu('postgres');
      const r = await timeCommand(recv, ['-d', w.url, '--slot', 'bench_recvlogical', '--start', '--no-loop', '-F', '0', '-o', 'proto_version=1', '-o', `publication_names=${pub}`, '-o', 'messages=true', '--endpos', endpos, '-f', '/dev/null']);
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.slice(-500)}`);
      out.push({ section, contender: 'pg_recvlogical (pgoutput → /dev/null)', role: 'peer', ...peerFigures(r, changes, 'postgres', server0) });
    } catch (err) {
      out.push({ section, contender: 'pg_recvlogical (pgoutput → /dev/null)', role: 'peer', error: errText(err) });
    } finally {
      await w.dropSlot('bench_recvlogical');
    }
  }
  o.log(line(out.at(-1)!));

  // pg-logical-replication with its own pgoutput parser, no sink, in its own process.
  await w.copySlot('bench_origin', 'bench_pglr');
  try {
    const server0 = serverCpu('postgres');
    const r = await timeCommand(process.execPath, [join(BENCH_DIST, 'peers', 'pg-logical-replication.js'), w.url, 'bench_pglr', pub, END_PREFIX], { timeoutMs: 600_000 });
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.slice(-500)}`);
    const got = (JSON.parse(r.stdout.trim().split('\n').pop()!) as { rows: number }).rows;
    if (got !== changes) throw new Error(`decoded ${got} rows, expected ${changes}`);
    out.push({ section, contender: 'pg-logical-replication (PgoutputPlugin, no sink)', role: 'peer', ...peerFigures(r, changes, 'postgres', server0) });
  } catch (err) {
    out.push({ section, contender: 'pg-logical-replication (PgoutputPlugin, no sink)', role: 'peer', error: errText(err) });
  } finally {
    await w.dropSlot('bench_pglr');
  }
  o.log(line(out.at(-1)!));
  await w.dropSlot('bench_origin');
  return out;
}

export function line(t: Throughput): string {
  if (t.skipped) return `  ${t.contender}: skipped (${t.skipped})`;
  if (t.error) return `  ${t.contender}: FAILED (${t.error})`;
  const cpu = t.cpuSeconds !== undefined ? `, CPU ${t.cpuSeconds.toFixed(2)} s` : '';
  const db = t.serverCpuSeconds !== undefined ? `, db CPU ${t.serverCpuSeconds.toFixed(2)} s` : '';
  const trials = t.trials ? `; median of ${t.trials.length} runs: ${t.trials.join(', ')} rows/s` : '';
  return `  ${t.contender}: ${t.rowsPerSec} rows/s (${t.rows} rows in ${t.seconds!.toFixed(2)} s${t.peakRssMb ? `, peak RSS ${t.peakRssMb} MB` : ''}${cpu}${db}${trials})`;
}
