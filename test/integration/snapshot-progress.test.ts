import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { BIN, PgTestDb, TempDir } from '../helpers/context.js';
import { FakeTty } from '../helpers/fake-tty.js';

/** Runs `cmd` in a pseudo-terminal (util-linux `script`) and returns everything it drew. */
function inTerminal(cmd: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('script', ['-q', '-e', '-c', `stty cols 140 rows 40; exec ${cmd}`, '/dev/null'], { env: { ...process.env, CI: '', NO_COLOR: '1', TRIBUTARY_LOG_FORMAT: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('snapshot progress on a terminal', () => {
  it('postgres table never ANALYZEd: the bar counts rows with the total unknown, logs print readably above it', { timeout: 120_000 }, async () => {
    await using db = await PgTestDb.create('sprog');
    await using dir = new TempDir();
    await db.query("CREATE TABLE t (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false); INSERT INTO t SELECT g, 'x' FROM generate_series(1, 20000) g");
    const { rows } = await db.query<{ n: number }>("SELECT reltuples AS n FROM pg_class WHERE relname = 't'");
    assert.equal(Number(rows[0]!.n), -1, 'the table has no statistics');
    const cfg = dir.file(
      'p.yaml',
      `name: sprog${process.pid % 100000}
source:
  type: postgres
  url: ${db.url}
  tables: [public.t]
  snapshot: initial_only
  snapshot_chunk_rows: 500
  snapshot_workers: 1
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${dir.path}/out.jsonl
http: { port: 0 }
`,
    );
    const r = await inTerminal(`${process.execPath} ${BIN} run --config ${cfg}`, 100_000);
    assert.equal(r.code, 0, r.out.slice(-3000));
    const raw = r.out.replace(/\r\n/g, '\n');
    // Every frame the bar drew, in order.
    const frames = [...raw.matchAll(/public\.t +\|[█░·]+\| ([^|\n\x1b]*)/g)].map((m) => m[1]!.trim());
    const done = frames.findIndex((f) => f.startsWith('100%'));
    assert.ok(done > 1, `frames before the end: ${JSON.stringify(frames)}`);
    for (const f of frames.slice(0, done)) assert.match(f, /^\d+ rows, total unknown$/, `while chunks remain: ${f}`);
    assert.match(frames[done]!, /^100% 20000 rows$/);

    const tty = new FakeTty(140);
    tty.feed(raw);
    const screen = tty.screen();
    assert.ok(!screen.some((l) => l.includes('{"level"')), `no raw JSON:\n${screen.join('\n')}`);
    assert.equal(screen.filter((l) => /^ public\.t +\|/.test(l)).length, 1, `one bar, no stale copies:\n${screen.join('\n')}`);
    assert.ok(screen.some((l) => /^\d\d:\d\d:\d\d\.\d{3} INFO  snapshot started: 1 table\(s\)  pipeline=sprog/.test(l)), screen.join('\n'));
    const bar = screen.findIndex((l) => /^ public\.t +\|/.test(l));
    assert.ok(screen.slice(0, bar).some((l) => /INFO  snapshot completed: 20000 rows/.test(l)), 'logs of the snapshot are above its bar');
    process.stderr.write(`# progress on a terminal: ${done} frames with the total unknown, then ${frames[done]}\n`);
  });
});
