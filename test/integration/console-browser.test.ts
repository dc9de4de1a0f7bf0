import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PgTestDb, REPO, TempDir, TributaryProcess, waitFor } from '../helpers/context.js';
import { freePort } from '../helpers/embedded-pg.js';

/**
 * The web console (issue 15, part 1) in a real browser: Debian's Chromium driven by
 * playwright-core against a live pipeline (real Postgres, a jsonl sink and a slow plugin sink).
 * Every page loads; lag rises and falls while a writer runs; a rewind shows its dry run before
 * it happens; a snapshot is paused and resumed; a dead letter is retried and delivered. The
 * screenshots in docs/console/ (referenced by the README) are taken here: with
 * TRIBUTARY_UPDATE_SCREENSHOTS=1 into docs/console/, otherwise into a scratch directory, so a
 * test run does not leave the checkout modified.
 */

const TOKEN = 'console-token-0123456789abcdef';
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = process.env.TRIBUTARY_UPDATE_SCREENSHOTS === '1' ? join(REPO, 'docs', 'console') : join(tmpdir(), `tributary-console-shots-${process.pid}`);

const lines = (path: string): string[] => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

/** A browser context that is closed (with its Chromium) when the test ends. */
async function openBrowser(): Promise<Browser & AsyncDisposable> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

describe('the web console in Chromium', { concurrency: false, skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium; .ci/setup.sh installs it)` }, () => {
  it('every page against a live pipeline: lag, rewind, snapshot control, dead letters', { timeout: 240_000 }, async (t) => {
    await using db = await PgTestDb.create('console');
    await using dir = new TempDir();
    await db.query('CREATE TABLE orders (id serial PRIMARY KEY, note text, poison boolean NOT NULL DEFAULT false)');
    await db.query('CREATE TABLE big (id bigint PRIMARY KEY, v int NOT NULL); INSERT INTO big SELECT g, 0 FROM generate_series(1, 100000) g; ANALYZE big');
    await db.query("INSERT INTO orders (note) SELECT 'seed ' || g FROM generate_series(1, 20) g");
    const port = await freePort();
    const name = `console${process.pid}`;
    const slowOut = join(dir.path, 'slow.jsonl');
    const auditOut = join(dir.path, 'audit.jsonl');
    const fixed = join(dir.path, 'fixed');
    const plugin = join(REPO, 'test', 'fixtures', 'slow-sink.js');
    const cfg = dir.file(
      `${name}.yaml`,
      `name: ${name}
source: { type: postgres, url: "${db.url}", tables: [public.orders, public.big], snapshot: initial, snapshot_chunk_rows: 100 }
state: { type: file, dir: ${dir.path}/state }
sinks:
  - { name: audit, type: jsonl, path: ${auditOut}, tables: [public.orders] }
  - name: slow
    type: ${plugin}
    path: ${slowOut}
    fixed_flag: ${fixed}
    delay_ms: 150
    tables: [public.orders]
    batch: { max_events: 50 }
    retry: { attempts: 1, backoff_ms: 10 }
http: { port: ${port}, auth_token: "\${ADMIN_TOKEN}", history_interval: 1s }
`,
    );
    await using proc = TributaryProcess.start(['run', '--config', cfg], { env: { ADMIN_TOKEN: TOKEN } });
    await proc.waitForLog(new RegExp(`pipeline ${name} running`), 60_000);
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    await waitFor(() => lines(slowOut).length >= 20, { what: 'the initial snapshot of orders at the slow sink', timeoutMs: 60_000 });

    await using browser = await openBrowser();
    const context = await browser.newContext({ viewport: { width: 1366, height: 860 }, colorScheme: 'light' });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // 401s before the token is entered are expected; a CSP violation or script error is not.
      if (m.type() === 'error' && !/401/.test(m.text())) problems.push(`console: ${m.text()}`);
    });

    await t.test('the shell loads without the token, with a CSP and cache headers; data needs the token', async () => {
      const index = await fetch(`${base}/`);
      assert.equal(index.status, 200);
      assert.match(index.headers.get('content-type')!, /text\/html/);
      assert.match(index.headers.get('content-security-policy')!, /script-src 'self'/);
      assert.equal(index.headers.get('cache-control'), 'no-cache');
      const asset = /src="(\/assets\/[^"]+\.js)"/.exec(await index.text())![1]!;
      const js = await fetch(`${base}${asset}`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type')!, /text\/javascript/);
      assert.match(js.headers.get('cache-control')!, /immutable/);
      assert.equal((await fetch(`${base}/assets/..%2f..%2fpackage.json`)).status, 404);
      assert.equal((await fetch(`${base}/status`)).status, 401);
      assert.equal((await fetch(`${base}/history`)).status, 401);

      await page.goto(`${base}/`);
      await page.getByTestId('token-form').waitFor();
      await page.getByLabel('admin token').fill('wrong-token-0123456789abcdef');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('The token was refused.').waitFor();
      await page.getByLabel('admin token').fill(TOKEN);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const card = page.getByTestId(`pipeline-${name}`);
      await card.getByTestId('pipeline-state').filter({ hasText: 'running' }).waitFor();
      assert.match((await card.getByTestId('source-position').textContent())!, /^[0-9A-F]+\/[0-9A-F]+$/, 'an LSN');
      // What the slot holds back (pg_wal_lsn_diff), from /status held_back.
      await card.getByTestId('held-back').filter({ hasText: /\d.*B of WAL/ }).waitFor({ timeout: 30_000 });
      await shot(page, 'pipelines');
      // Dark mode: the same page, other colours.
      const light = await page.evaluate<string>('getComputedStyle(document.documentElement).backgroundColor');
      await page.emulateMedia({ colorScheme: 'dark' });
      const dark = await page.evaluate<string>('getComputedStyle(document.documentElement).backgroundColor');
      assert.notEqual(dark, light, 'prefers-color-scheme: dark changes the colours');
      await shot(page, 'pipelines-dark');
      await page.emulateMedia({ colorScheme: 'light' });
    });

    await t.test('sinks: lag rises while a writer runs and falls after, live, on the charts', async () => {
      await page.getByRole('link', { name: 'Sinks' }).click();
      const row = page.getByTestId(`sink-${name}-slow`);
      await row.waitFor();
      await page.getByTestId('chart-lag-events').locator('canvas').waitFor();
      const lagCell = row.getByTestId('lag-events');
      const lagNow = async () => Number((await lagCell.textContent())!.replace(/[^0-9]/g, '') || 0);
      // 4,000 rows in ~4 s; the slow sink takes ~330 events/s (50 per batch, 150 ms each).
      const writer = (async () => {
        for (let i = 0; i < 40; i++) {
          await db.query("INSERT INTO orders (note) SELECT 'w' || g FROM generate_series(1, 100) g");
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      let peak = 0;
      await waitFor(async () => (peak = Math.max(peak, await lagNow())) > 300, { what: 'the slow sink\'s lag to rise on the page', timeoutMs: 30_000, intervalMs: 200 });
      await shot(page, 'sinks');
      await writer;
      await waitFor(async () => (await lagNow()) === 0, { what: 'the lag to fall back to 0 on the page', timeoutMs: 60_000, intervalMs: 250 });
      await waitFor(() => lines(slowOut).length >= 4020, { what: 'every row at the slow sink' });
      // The history the charts draw went up and came down.
      const h = (await (await fetch(`${base}/history?sink=slow`, { headers: auth })).json()) as { interval_ms: number; series: Array<{ points: number[][] }> };
      assert.equal(h.interval_ms, 1000);
      const pts = h.series[0]!.points;
      const top = pts.findIndex((p) => p[1]! > 300);
      assert.ok(top >= 0, `a sample with lag > 300: ${JSON.stringify(pts.map((p) => p[1]))}`);
      await waitFor(async () => {
        const again = (await (await fetch(`${base}/history?sink=slow`, { headers: auth })).json()) as typeof h;
        return again.series[0]!.points.slice(top).some((p) => p[1] === 0);
      }, { what: 'a later sample at 0' });
      assert.ok(pts.some((p) => p[4]! > 0), 'throughput was sampled');
      assert.equal(await page.locator('.chart canvas').count(), 4, 'four charts: events, seconds, bytes, throughput');
      await new Promise((r) => setTimeout(r, 2500)); // the charts poll /history every 2 s
      await shot(page, 'sinks-after');
    });

    await t.test('log: a rewind shows its dry-run count first, then happens on confirm; time travel', async () => {
      await page.getByRole('link', { name: 'Log' }).click();
      const card = page.getByTestId(`log-${name}`);
      await card.getByTestId('log-size').waitFor();
      assert.match((await card.getByTestId('log-size').textContent())!, /\d.* in \d+ segment/);
      const before = lines(auditOut).length;
      const rewind = card.getByTestId('rewind-audit');
      await rewind.getByLabel('rewind target').fill('earliest');
      await rewind.getByRole('button', { name: 'Rewind to…' }).click();
      const plan = rewind.getByTestId('rewind-plan');
      await plan.waitFor();
      const n = Number(/receive ([\d,]+) event/.exec((await plan.textContent())!)![1]!.replace(/,/g, ''));
      assert.ok(n >= 4020, `the dry run counts every orders event again (${n})`);
      await shot(page, 'log');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(lines(auditOut).length, before, 'the dry run changed nothing');
      await plan.getByRole('button', { name: 'Confirm rewind' }).click();
      await rewind.getByTestId('rewind-done').waitFor();
      await waitFor(() => lines(auditOut).length >= before + 4020, { what: 'the rewound sink to receive the events again', timeoutMs: 60_000 });

      const tt = page.getByTestId('time-travel');
      await tt.locator('input[name=table]').fill('public.orders');
      await tt.locator('input[name=key]').fill('{"id": 3}');
      await tt.locator('input[name=at]').fill('now');
      await tt.getByRole('button', { name: 'Look up' }).click();
      const answer = tt.getByTestId('time-travel-answer');
      await answer.waitFor();
      assert.match((await answer.textContent())!, /"id":3.*"note":"seed 3"/);
    });

    await t.test('snapshots: start a filtered re-snapshot, pause it, resume it', async () => {
      await page.getByRole('link', { name: 'Snapshots' }).click();
      const form = page.getByTestId('resnapshot-form');
      await form.locator('input[name=table]').fill('public.big');
      await form.locator('input[name=where]').fill('id <= 60000');
      await form.getByRole('button', { name: 'Start snapshot' }).click();
      const card = page.getByTestId(`snapshot-${name}`);
      const status = card.getByTestId('snapshot-status');
      await card.getByRole('button', { name: 'Pause' }).and(page.locator(':enabled')).click({ timeout: 10_000 });
      await status.filter({ hasText: 'paused' }).waitFor();
      await proc.waitForLog(/snapshot paused/);
      await new Promise((r) => setTimeout(r, 1500)); // chunks in flight when paused land
      const rows = () => card.getByTestId('snapshot-table-public.big').getByTestId('rows').textContent();
      const atPause = await rows();
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(await rows(), atPause, 'no rows arrive while paused');
      assert.ok(Number(atPause!.replace(/,/g, '')) < 60000, `paused before the end (${atPause})`);
      await shot(page, 'snapshots');
      await card.getByRole('button', { name: 'Resume' }).click();
      await status.filter({ hasText: 'done' }).waitFor({ timeout: 90_000 });
      assert.equal(await rows(), '60,000');
    });

    await t.test('dead letters: browse, retry one and see it delivered, discard one with a reason', async () => {
      await db.query("INSERT INTO orders (note, poison) VALUES ('bad', true)");
      const badId = Number((await db.query("SELECT id FROM orders WHERE note = 'bad'")).rows[0]!.id);
      await page.getByRole('link', { name: 'Dead letters' }).click();
      const letter = page.getByTestId('dead-letter').filter({ hasText: `"id":${badId}` });
      await letter.waitFor({ timeout: 30_000 });
      assert.match((await letter.textContent())!, /violates the target's constraint/);
      await shot(page, 'deadletters');
      writeFileSync(fixed, 'fixed\n'); // the bug is fixed
      await letter.getByRole('button', { name: 'Retry' }).click();
      await page
        .getByTestId('dlq-result')
        .filter({ hasText: '1 delivered' })
        .waitFor({ timeout: 30_000 })
        .catch(async (e: Error) => {
          throw new Error(`${e.message}\npage: ${await page.locator('main').innerText()}\nlog: ${proc.stderr.slice(-3000)}`);
        });
      assert.ok(lines(slowOut).some((l) => JSON.parse(l).after?.id === badId), 'the retried event reached the sink');
      await letter.waitFor({ state: 'detached' });

      rmSync(fixed); // broken again: the next poison row parks, and is discarded
      // Alone in its batch, and the sink rejects it with a plain Error: the successful retry
      // told the runner the target works, so the row is blamed and parked (before that was
      // recorded, a lone failure right after a failed write looked like a broken target and was
      // retried for ever).
      await db.query("INSERT INTO orders (note, poison) VALUES ('worse', true)");
      const worseId = Number((await db.query("SELECT id FROM orders WHERE note = 'worse'")).rows[0]!.id);
      const worse = page.getByTestId('dead-letter').filter({ hasText: `"id":${worseId}` });
      await worse.waitFor({ timeout: 30_000 }).catch(async (e: Error) => {
        throw new Error(`${e.message}\npage: ${await page.locator('main').innerText()}\nlog: ${proc.stderr.slice(-2500)}\nslow: ${lines(slowOut).slice(-2).join('\n')}`);
      });
      await worse.getByRole('checkbox').check();
      await page.getByLabel('discard reason').fill('test row, never valid');
      await page.getByRole('button', { name: 'Discard selected' }).click();
      await page.getByTestId('dlq-result').filter({ hasText: 'discarded 1' }).waitFor();
      await worse.waitFor({ state: 'detached' });
      const depth = (await (await fetch(`${base}/dlq`, { headers: auth })).json()) as { sinks: Array<{ sink: string; depth: number }> };
      assert.equal(depth.sinks.find((x) => x.sink === 'slow')!.depth, 0);
      assert.ok(!lines(slowOut).some((l) => JSON.parse(l).after?.id === worseId), 'a discarded event is not delivered');
    });

    assert.deepEqual(problems, [], 'no script errors and no CSP violations');
  });
});
