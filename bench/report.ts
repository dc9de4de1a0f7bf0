/** Judges the targets of issue 6 and prints the report as plain-text tables. */
import type { Latency, Memory, Report, Target, Throughput } from './lib/results.js';

const ok = (t: Throughput | undefined): t is Throughput & { rowsPerSec: number } => !!t && !t.skipped && !t.error && typeof t.rowsPerSec === 'number';
const find = (th: Throughput[], section: string, re: RegExp) => th.find((t) => t.section === section && re.test(t.contender));
const why = (t: Throughput | undefined, what: string) => (!t ? `${what} not run` : t.skipped ? `${what} skipped: ${t.skipped}` : t.error ? `${what} failed` : '');

function ratioTarget(name: string, goal: number, ours: Throughput | undefined, peers: (Throughput | undefined)[]): Target {
  const ran = peers.filter(ok);
  if (!ok(ours) || !ran.length) {
    return { name, goal: `≥ ${goal.toFixed(1)}×`, measured: why(ours, 'Tributary') || peers.map((p, i) => why(p, `peer ${i + 1}`)).filter(Boolean).join('; '), pass: null };
  }
  const best = ran.reduce((a, b) => (b.rowsPerSec > a.rowsPerSec ? b : a));
  const r = ours.rowsPerSec / best.rowsPerSec;
  return { name, goal: `≥ ${goal.toFixed(1)}×`, measured: `${r.toFixed(2)}× (${ours.rowsPerSec} vs ${best.rowsPerSec} rows/s)`, pass: r >= goal };
}

export function judge(th: Throughput[], lat: Latency[], mem: Memory[], ran: Set<string>, log?: Report['log']): Target[] {
  const t: Target[] = [];
  if (ran.has('log')) {
    for (const a of log?.appends ?? []) t.push({ name: `log appends alone, durable (${a.compression})`, goal: '≥ 300000 events/s', measured: `${a.eventsPerSec} events/s`, pass: a.eventsPerSec >= 300_000 });
    const l = log?.lookup;
    t.push(l
      ? { name: `one-key state --at over ${l.events / 1e6}M events, fresh process`, goal: '< 1000 ms, right row', measured: `${l.ms} ms${l.correct ? '' : ', WRONG ROW'}`, pass: l.correct && l.ms < 1000 }
      : { name: 'one-key state --at', goal: '< 1000 ms', measured: log?.error ? `failed: ${log.error}` : 'not run', pass: null });
  }
  if (ran.has('pg')) {
    const ours = find(th, 'pg', /log → jsonl/);
    t.push(ratioTarget('Postgres slot→log→jsonl vs slot→memory stream→jsonl', 0.8, ours, [find(th, 'pg', /memory stream → jsonl/)]));
    t.push(ratioTarget('Postgres slot→jsonl vs pg_recvlogical', 0.9, ours, [find(th, 'pg', /pg_recvlogical/)]));
    t.push(ratioTarget('Postgres slot→jsonl vs pg-logical-replication', 1.2, ours, [find(th, 'pg', /pg-logical-replication/)]));
  }
  if (ran.has('mysql')) {
    t.push(ratioTarget('MariaDB binlog→log→jsonl vs binlog→memory stream→jsonl', 0.8, find(th, 'mysql', /log → jsonl/), [find(th, 'mysql', /memory stream → jsonl/)]));
    t.push(ratioTarget('MariaDB binlog→jsonl vs faster of mariadb-binlog -v / zongji', 1.0, find(th, 'mysql', /log → jsonl/), [find(th, 'mysql', /mariadb-binlog/), find(th, 'mysql', /zongji/)]));
  }
  if (ran.has('snapshot')) {
    t.push(ratioTarget('Postgres snapshot vs COPY TO STDOUT', 0.5, find(th, 'snapshot-pg', /Tributary/), [find(th, 'snapshot-pg', /COPY/)]));
    t.push(ratioTarget('MariaDB snapshot vs mariadb --quick', 0.5, find(th, 'snapshot-mysql', /Tributary/), [find(th, 'snapshot-mysql', /mariadb/)]));
  }
  for (const l of lat) {
    const name = `${l.source} latency p99 at ${l.rate}/s`;
    if (l.skipped || l.error || l.p99Ms === undefined) t.push({ name, goal: '≤ 50 ms', measured: l.skipped ? `skipped: ${l.skipped}` : 'failed', pass: null });
    else t.push({ name, goal: '≤ 50 ms', measured: `${l.p99Ms} ms`, pass: l.p99Ms <= 50 });
  }
  for (const m of mem) {
    const name = `${m.source} peak RSS, one ${m.rows / 1e6}M-row transaction`;
    if (m.skipped || m.error || m.peakRssMb === undefined) t.push({ name, goal: '≤ 300 MB', measured: m.skipped ? `skipped: ${m.skipped}` : 'failed', pass: null });
    else t.push({ name, goal: '≤ 300 MB', measured: `${m.peakRssMb} MB`, pass: m.peakRssMb <= 300 });
  }
  return t;
}

function table(head: string[], rows: string[][], right: number[] = []): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (right.includes(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [fmt(head), w.map((n) => '-'.repeat(n)).join('  ').trimEnd(), ...rows.map(fmt)].join('\n');
}

const SECTION_TITLE: Record<string, string> = {
  pg: 'Postgres streaming (backlog drain)',
  mysql: 'MariaDB streaming (backlog drain)',
  'snapshot-pg': 'Postgres snapshot',
  'snapshot-mysql': 'MariaDB snapshot',
  sinks: 'Sink drains (bench/sinks/*, write() in batches of 2,000)',
};

export function render(r: Report): string {
  const out: string[] = [];
  out.push(`Tributary benchmark · ${r.date} · commit ${r.commit.slice(0, 10)}${r.dirty ? ' (dirty)' : ''} · ${r.machine.cpus} CPUs · node ${r.machine.node}` +
    `${r.machine.postgres ? ` · PostgreSQL ${r.machine.postgres}` : ''}${r.machine.mariadb ? ` · MariaDB ${r.machine.mariadb}` : ''}`);
  out.push(`options: ${JSON.stringify(r.options)}`);
  for (const section of Object.keys(SECTION_TITLE)) {
    const rows = r.throughput.filter((t) => t.section === section);
    if (!rows.length) continue;
    const ours = rows.filter((t) => t.role === 'tributary').filter(ok);
    const rowsOut = rows.map((t) => {
      const status = t.skipped ? `skipped: ${t.skipped}` : t.error ? `FAILED: ${t.error}` : '';
      const ratio = t.role === 'peer' && ok(t) && section !== 'sinks'
        ? ours.map((o) => `${(o.rowsPerSec / t.rowsPerSec).toFixed(2)}×`).join(' / ')
        : '';
      return [t.contender, t.rows?.toString() ?? '', t.seconds?.toFixed(2) ?? '', t.rowsPerSec?.toString() ?? '', t.peakRssMb?.toString() ?? '', t.cpuSeconds?.toFixed(2) ?? '', t.serverCpuSeconds?.toFixed(2) ?? '', ratio, status];
    });
    const ratioHead = section === 'sinks' ? '' : `Tributary÷peer (${ours.map((o) => (/null/.test(o.contender) ? 'null' : /memory/.test(o.contender) ? 'memory' : 'log')).join(' / ') || '-'})`;
    out.push('', SECTION_TITLE[section]!, table(['contender', 'rows', 'seconds', 'rows/s', 'RSS MB', 'CPU s', 'db CPU s', ratioHead, ''], rowsOut, [1, 2, 3, 4, 5, 6, 7]));
  }
  if (r.latency.length) {
    out.push('', 'Latency: commit → durable in the sink, steady load');
    out.push(table(['source', 'offered/s', 'seconds', 'events', 'p50 ms', 'p99 ms', 'max ms', 'commit time from'],
      r.latency.map((l) => [l.source, String(l.rate), String(l.seconds), String(l.events), l.p50Ms?.toString() ?? '', l.p99Ms?.toString() ?? '', l.maxMs?.toString() ?? '', l.skipped ? `skipped: ${l.skipped}` : l.error ? `FAILED: ${l.error}` : l.clock ?? '']), [1, 2, 3, 4, 5, 6]));
  }
  if (r.memory.length) {
    out.push('', 'Memory: one big transaction streamed into jsonl (node default heap settings)');
    out.push(table(['source', 'rows', 'peak RSS MB', 'seconds', 'rows/s', ''],
      r.memory.map((m) => [m.source, String(m.rows), m.peakRssMb?.toString() ?? '', m.seconds?.toFixed(1) ?? '', m.rowsPerSec?.toString() ?? '', m.skipped ? `skipped: ${m.skipped}` : m.error ? `FAILED: ${m.error}` : '']), [1, 2, 3, 4]));
  }
  if (r.log?.appends.length) {
    out.push('', 'The log alone (no source, no sink): durable appends, transactions of 10 events of ~330 bytes');
    out.push(table(['compression', 'events', 'seconds', 'events/s', 'bytes/event on disk'],
      r.log.appends.map((a) => [a.compression, String(a.events), a.seconds.toFixed(2), String(a.eventsPerSec), String(a.bytesPerEvent)]), [1, 2, 3, 4]));
  }
  if (r.log?.lookup) out.push('', `Time travel: one key's state --at over ${r.log.lookup.events} events in a fresh process: ${r.log.lookup.ms} ms${r.log.lookup.correct ? ' (right row)' : ' (WRONG ROW)'}`);
  if (r.targets.length) {
    out.push('', 'Targets (issue 6)');
    out.push(table(['target', 'goal', 'measured', 'result'], r.targets.map((t) => [t.name, t.goal, t.measured, t.pass === null ? 'n/a' : t.pass ? 'PASS' : 'MISS'])));
  }
  out.push('', `total ${r.totalSeconds.toFixed(0)} s`);
  return out.join('\n');
}
