/**
 * A sink plugin whose checkpoint state is not plain JSON stops the pipeline with TRB3014,
 * naming what is wrong, instead of an uncoded "Do not know how to serialize a BigInt" (or,
 * for a Map, silently storing {} and truncating its own output after a restart).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PgTestDb, REPO, TempDir, TributaryProcess } from '../helpers/context.js';

describe('plugin checkpoint state', { concurrency: false }, () => {
  for (const [fixture, why] of [['bigint-state.js', /state\.offset is a BigInt \(\d+n\)/], ['map-state.js', /state is a Map \(JSON stores it as \{\}\)/]] as const) {
    it(`${fixture}: the pipeline stops with TRB3014 at its first checkpoint`, { timeout: 120_000 }, async () => {
      await using db = await PgTestDb.create('plugstate');
      await db.query('CREATE TABLE t (id int PRIMARY KEY)');
      await using dir = new TempDir('tributary-plugin-state-');
      const name = `plugstate_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
      const cfg = dir.file(
        'p.yaml',
        `name: ${name}\nsource: { type: postgres, url: "${db.url}", tables: [public.t], snapshot: never }\nstate: { type: file, dir: ${dir.path}/state }\nsinks:\n  - name: plugin\n    type: ${join(REPO, 'test', 'fixtures', 'broken-sinks', fixture)}\n    path: ${dir.path}/out.jsonl\nhttp: { port: 0 }\n`,
      );
      await using p = TributaryProcess.start(['run', '--config', cfg]);
      await p.waitForLog(new RegExp(`pipeline ${name} running`));
      await db.query('INSERT INTO t VALUES (1)');
      const code = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('still running'), 60_000))]);
      assert.equal(code, 1, p.stderr.slice(-2000));
      assert.match(p.stderr, /TRB3014 sink plugin returned checkpoint state that is not plain JSON/);
      assert.match(p.stderr, why);
      assert.doesNotMatch(p.stderr, /Do not know how to serialize/);
      console.log(`# ${fixture}: ${/TRB3014[^\n]*/.exec(p.stderr)![0].slice(0, 200)}`);
    });
  }
});
