import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { startHttp } from '../../src/http/server.js';
import { historyRoute } from '../../src/http/history-route.js';
import { LagHistory } from '../../src/runtime/lag-history.js';
import { Metrics } from '../../src/runtime/metrics.js';
import { TempDir } from '../helpers/context.js';

const TOKEN = 'serve-token-0123456789abcdef';

async function serve(consoleDir: string, token: string | null): Promise<Server & AsyncDisposable & { base: string }> {
  const history = new LagHistory({ intervalMs: 1000, sample: () => [{ pipeline: 'p', sink: 's', lagEvents: 5, lagBytes: null, lagSeconds: 1, eventsOut: 0 }] });
  history.tick();
  const server = await startHttp({
    host: '127.0.0.1',
    port: 0,
    auth: { token, openProbes: true },
    pipelines: [],
    metrics: new Metrics(),
    logger: pino({ level: 'silent' }),
    routes: { get: { '/history': historyRoute(history) } },
    consoleDir,
  });
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return Object.assign(server, { base, [Symbol.asyncDispose]: () => new Promise<void>((r) => server.close(() => r())) });
}

describe('serving the console (src/http/console-assets.ts)', () => {
  it('serves the shell without the token, with content types, caching and a CSP; data still needs the token', async () => {
    await using dir = new TempDir();
    mkdirSync(join(dir.path, 'assets'));
    dir.file('index.html', '<!doctype html><script type="module" src="/assets/index-abc.js"></script>');
    dir.file('assets/index-abc.js', 'console.log(1)');
    dir.file('assets/index-abc.css', 'body{}');
    await using s = await serve(dir.path, TOKEN);
    for (const path of ['/', '/index.html']) {
      const r = await fetch(s.base + path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(r.headers.get('cache-control'), 'no-cache');
      assert.match(r.headers.get('content-security-policy')!, /default-src 'self'; script-src 'self'; style-src 'self'/);
      assert.match(r.headers.get('content-security-policy')!, /frame-ancestors 'none'/);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    }
    const js = await fetch(`${s.base}/assets/index-abc.js`);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(await js.text(), 'console.log(1)');
    assert.equal((await fetch(`${s.base}/assets/index-abc.css`)).headers.get('content-type'), 'text/css; charset=utf-8');
    // Only listed files: no way out of the folder. (URL parsing turns `..` and `%2e%2e` into a
    // path outside /assets/, which is no shell path and needs the token.)
    for (const path of ['/assets/..%2f..%2fpackage.json', '/assets/%2e%2e/%2e%2e/package.json', '/assets/nope.js']) {
      const r = await fetch(s.base + path);
      const text = await r.text();
      assert.ok(r.status === 404 || r.status === 401, `${path}: ${r.status}`);
      assert.doesNotMatch(text, /"name": "tributary"/, path);
      if (r.status === 404) assert.equal((JSON.parse(text) as { code: string }).code, 'TRB6020');
    }
    // A change is still refused on a shell path, and data needs the token.
    assert.equal((await fetch(`${s.base}/`, { method: 'POST' })).status, 401);
    assert.equal((await fetch(`${s.base}/history`)).status, 401);
    const h = await fetch(`${s.base}/history`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(h.status, 200);
    const body = (await h.json()) as { interval_ms: number; series: Array<{ pipeline: string; sink: string; points: unknown[][] }> };
    assert.equal(body.interval_ms, 1000);
    assert.equal(body.series[0]!.sink, 's');
    assert.equal(body.series[0]!.points[0]![1], 5);
  });

  it('with no token configured, reads (the shell and its data) are open and changes are refused', async () => {
    await using dir = new TempDir();
    dir.file('index.html', '<!doctype html>');
    await using s = await serve(dir.path, null);
    assert.equal((await fetch(`${s.base}/`)).status, 200);
    assert.equal((await fetch(`${s.base}/history`)).status, 200);
    const post = await fetch(`${s.base}/snapshot`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 403);
    assert.equal(((await post.json()) as { code: string }).code, 'TRB6002');
  });

  it('a missing build answers 404 with TRB6020 naming npm run console:build', async () => {
    await using dir = new TempDir();
    await using s = await serve(`${dir.path}/nothing-here`, null);
    const r = await fetch(`${s.base}/`);
    assert.equal(r.status, 404);
    const body = (await r.json()) as { code: string; fix: string };
    assert.equal(body.code, 'TRB6020');
    assert.match(body.fix, /npm run console:build/);
  });
});
