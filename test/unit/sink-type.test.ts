import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'tributary-sinktype-'));

describe('an unknown sink type', () => {
  it('suggests the nearest built-in name, with file, line and field', async () => {
    const cases: [string, string | null][] = [
      ['elasticsaerch', 'elasticsearch'],
      ['clikhouse', 'clickhouse'],
      ['jsonlines', null], // too far from anything: no guess, the list only
    ];
    for (const [type, hint] of cases) {
      const f = join(dir, `${type}.yaml`);
      writeFileSync(f, `name: a\nsource: { type: postgres, url: "postgres://u@h/db" }\nsinks:\n  - { name: s, type: ${type} }\n`);
      await assert.rejects(loadConfig([f], {}), (e: Error & { code?: string; fix?: string }) => {
        assert.equal(e.code, 'TRB1005');
        assert.match(e.message, new RegExp(`${type}\\.yaml:4: sinks\\[0\\]\\.type: unknown sink type "${type}"`));
        if (hint) assert.match(e.message, new RegExp(`\\(did you mean "${hint}"\\?\\)`));
        else assert.doesNotMatch(e.message, /did you mean/);
        assert.match(e.fix!, /use one of: clickhouse, duckdb, elasticsearch/);
        return true;
      });
    }
  });
});
