/**
 * A fresh clone runs every test: no test or helper reads files from beside the repository
 * or from a fixed machine path (the binlog vectors once came from ../shared or /work/shared).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { REPO } from '../helpers/context.js';
import { vectorFiles, vectorsDir } from '../helpers/env.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'fixtures' ? [] : sources(p);
    return /\.(ts|js|sh)$/.test(f) ? [p] : [];
  });
}

test('the binlog vectors live inside the repository, with their README and licence', () => {
  const dir = vectorsDir();
  assert.equal(relative(REPO, dir), join('test', 'fixtures', 'mysql-binlog'));
  assert.ok(vectorFiles().length >= 17, 'the binlog files are there');
  const readme = readFileSync(join(dir, 'README.md'), 'utf8');
  assert.match(readme, /Apache-2\.0/);
  assert.match(readFileSync(join(dir, 'LICENSE-APACHE-2.0'), 'utf8'), /Apache License\s+Version 2\.0/);
});

test('no test names a path outside the repository', () => {
  // Machine paths and escapes above the repository root. /tmp (scratch dirs the tests make)
  // and /proc (process stats) are not data the tests depend on.
  const outside = [/['"`]\/work\//, /['"`]\/home\//, /\.\.\/shared\b/, /['"]\.\.['"],\s*['"]shared['"]/, /\bshared\/vectors\b/];
  const offenders: string[] = [];
  for (const f of [...sources(join(REPO, 'test')), ...sources(join(REPO, '.ci'))]) {
    const text = readFileSync(f, 'utf8');
    for (const re of outside) if (re.test(text) && !f.endsWith('self-contained.test.ts')) offenders.push(`${relative(REPO, f)}: ${re}`);
  }
  assert.deepEqual(offenders, []);
});
