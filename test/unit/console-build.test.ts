import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO } from '../helpers/context.js';

const DIST = join(REPO, 'console', 'dist');

describe('the committed console build (console/dist)', () => {
  it('was built from the sources in console/ (npm run console:build records their hash)', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'console', 'build-hash.mjs'), '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('index.html loads only files that exist, and no inline script (the CSP forbids one)', () => {
    const html = readFileSync(join(DIST, 'index.html'), 'utf8');
    const refs = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(refs.some((r) => /^\/assets\/index-[\w-]+\.js$/.test(r)), 'a hashed script');
    assert.ok(refs.some((r) => /^\/assets\/index-[\w-]+\.css$/.test(r)), 'a hashed stylesheet');
    for (const r of refs) assert.ok(existsSync(join(DIST, r)), `${r} exists`);
    assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline <script>');
    assert.doesNotMatch(html, /\sstyle=|<style/, 'no inline style');
  });

  it('ships in the package (package.json "files", not ignored by git)', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { files: string[]; scripts: Record<string, string> };
    assert.ok(pkg.files.includes('console/dist'));
    assert.match(pkg.scripts['console:build']!, /vite build .*build-hash\.mjs/);
    const ignored = spawnSync('git', ['check-ignore', '-q', 'console/dist/index.html'], { cwd: REPO });
    // Exit 1: not ignored; 0: ignored. (No git, or not a checkout: nothing to check.)
    if (!ignored.error && ignored.status !== 128) assert.equal(ignored.status, 1, 'console/dist is not gitignored');
  });
});
