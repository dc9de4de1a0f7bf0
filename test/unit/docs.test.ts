import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { renderConfigReference } from '../../src/config/docs.js';
import { REPO } from '../helpers/context.js';

describe('docs match the code', () => {
  it('docs/configuration.md is what the schemas generate (npm run docs)', async () => {
    const committed = readFileSync(join(REPO, 'docs', 'configuration.md'), 'utf8');
    assert.equal(committed, await renderConfigReference(), 'regenerate with `npm run docs`');
  });

  it('docs/mysql.md and docs/snapshots.md say the same of source.pos: where the rows event starts', () => {
    const mysql = readFileSync(join(REPO, 'docs', 'mysql.md'), 'utf8');
    const snapshots = readFileSync(join(REPO, 'docs', 'snapshots.md'), 'utf8');
    // The property test (mysql-values-property) checks the code against mariadb-binlog.
    assert.match(mysql, /`file` and `pos`, the offset where the rows event that\s+holds the change starts/);
    assert.doesNotMatch(mysql, /`pos` \(where its transaction starts\)/);
    assert.match(snapshots, /`file`\/`pos` of the rows event that inserted the chunk's high\s+watermark/);
  });

  // Error codes: test/unit/error-catalogue.test.ts.
});
