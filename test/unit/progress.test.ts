import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { TerminalLog, formatLogLine } from '../../src/core/terminal-log.js';
import { SnapshotProgress, progressLine, type TableProgress } from '../../src/snapshot/progress.js';
import { FakeTty } from '../helpers/fake-tty.js';

const redraw = () => new Promise((r) => setTimeout(r, 250)); // cli-progress redraws every 100 ms
const barLines = (screen: string[], table: string) => screen.filter((l) => l.startsWith(` ${table.padEnd(24)} |`));

describe('terminal log lines', () => {
  it('a pino JSON line becomes time, level, message and key fields', () => {
    const t = new Date(2026, 0, 2, 3, 4, 5, 67).getTime();
    const line = JSON.stringify({ level: 40, time: t, pid: 1, hostname: 'h', pipeline: 'shop', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n  at x' }, delayMs: 1000, msg: 'replication connection lost' });
    assert.equal(formatLogLine(line), '03:04:05.067 WARN  replication connection lost  pipeline=shop err="boom" delayMs=1000\n');
    assert.match(formatLogLine(line, { color: true }), /\x1b\[33mWARN /);
    assert.equal(formatLogLine('not json'), 'not json\n');
  });
});

describe('snapshot progress lines', () => {
  const base: TableProgress = { table: 'public.t', rows: 0, estimate: 1000, started: 0, finished: null };
  it('a known estimate shows a bar, a percentage and an ETA, but never 100% before the table is done', () => {
    const mid = progressLine({ ...base, rows: 250 }, 1000);
    assert.match(mid, /\|██████░+\| 25% 250\/1000 rows \| 250 rows\/s \| ETA 3s$/);
    const met = progressLine({ ...base, rows: 1000 }, 1000);
    assert.match(met, / 99% 1000\/1000 rows/, 'the estimate met while chunks remain');
    assert.ok(!met.includes('|' + '█'.repeat(24) + '|'), 'no full bar while chunks remain');
    assert.match(progressLine({ ...base, rows: 1200, finished: 2000 }, 3000), /\|█{24}\| 100% 1200 rows \| done in 2s$/);
  });
  it('no estimate (never ANALYZEd), or an estimate exceeded, shows rows counted and no percentage or ETA', () => {
    const unknown = progressLine({ ...base, estimate: null, rows: 100 }, 1000);
    assert.match(unknown, /\| 100 rows, total unknown \| 100 rows\/s$/);
    assert.ok(!/%|ETA/.test(unknown), unknown);
    const over = progressLine({ ...base, estimate: 40, rows: 100 }, 1000);
    assert.match(over, /100 rows, more than the estimate of ~40/);
    assert.ok(!/%|ETA/.test(over), over);
    assert.ok(!/%|ETA/.test(progressLine({ ...base, estimate: 0, rows: 5 }, 1000)), 'an estimate of 0 with rows is exceeded too');
  });
});

describe('progress bars with logs on a terminal', () => {
  it('log lines are printed readably above the bars; no JSON, no stale copy of a bar', async () => {
    const tty = new FakeTty(140);
    const term = new TerminalLog(tty, false);
    const logger = pino({ level: 'info', base: undefined }, term);
    let now = 0;
    const progress = new SnapshotProgress(logger, { stream: tty, log: term, now: () => now });
    try {
      progress.read('public.t', 100, 1000);
      progress.read('public.u', 50, null);
      await redraw();
      for (let i = 1; i <= 5; i++) {
        now += 1000;
        logger.info({ chunk: i }, `log line ${i}`);
        progress.read('public.t', 100, 1000);
        progress.read('public.u', 50, null);
        await redraw();
      }
      const mid = tty.screen();
      assert.deepEqual(mid.filter((l) => /log line/.test(l)).map((l) => l.replace(/^\d\d:\d\d:\d\d\.\d{3} /, '')), [1, 2, 3, 4, 5].map((i) => `INFO  log line ${i}  chunk=${i}`), mid.join('\n'));
      assert.ok(!mid.some((l) => l.includes('{"level"')), 'no raw JSON');
      assert.equal(barLines(mid, 'public.t').length, 1, `one bar for public.t:\n${mid.join('\n')}`);
      assert.equal(barLines(mid, 'public.u').length, 1, 'one bar for public.u');
      assert.deepEqual(mid.slice(-2).map((l) => l.slice(1, 9)), ['public.t', 'public.u'], 'the bars stay below the log lines');
      assert.match(barLines(mid, 'public.t')[0]!, / 60% 600\/1000 rows/);
      assert.match(barLines(mid, 'public.u')[0]!, /300 rows, total unknown/);
      progress.tableDone('public.u', 300);
      logger.warn('after done');
      await redraw();
    } finally {
      progress.stop();
      progress.stop();
    }
    logger.info('after stop');
    const end = tty.screen();
    assert.match(barLines(end, 'public.u')[0]!, /100% 300 rows \| done in/);
    assert.equal(barLines(end, 'public.t').length, 1);
    assert.match(end.at(-1)!, /INFO  after stop$/, 'once the bars are gone, logs go straight to the terminal');
    assert.ok(end.some((l) => /WARN  after done$/.test(l)));
  });

  it('(control) logs that bypass the bars glue JSON onto them and leave stale copies', async () => {
    const tty = new FakeTty(140);
    const logger = pino({ level: 'info', base: undefined }, { write: (s: string) => tty.write(s) });
    const progress = new SnapshotProgress(logger, { stream: tty, log: null });
    try {
      progress.read('public.t', 100, 1000);
      await redraw();
      for (let i = 1; i <= 3; i++) {
        logger.info(`log line ${i}`);
        progress.read('public.t', 100, 1000);
        await redraw();
      }
    } finally {
      progress.stop();
    }
    const screen = tty.screen();
    assert.ok(barLines(screen, 'public.t').length > 1 || screen.some((l) => /\|.*\{"level"/.test(l)), 'a stale or glued bar: the emulator sees the defect');
  });
});
