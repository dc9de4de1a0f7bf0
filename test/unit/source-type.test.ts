import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'tributary-sourcetype-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
type Coded = Error & { code?: string; fix?: string };

describe('an unknown source type', () => {
  it('names file, line and field, suggests the nearest connector, and lists the known ones', async () => {
    const cases: [string, string | null][] = [
      ['postgress', 'postgres'],
      ['mysq', 'mysql'],
      ['oracle', null], // too far from anything: no guess, the list only
    ];
    for (const [type, hint] of cases) {
      const f = file(`${type}.yaml`, `name: a\nsinks: [{ name: s, type: stdout }]\nsource:\n  type: ${type}\n  url: x\n`);
      await assert.rejects(loadConfig([f], {}), (e: Coded) => {
        assert.equal(e.code, 'TRB1015');
        assert.match(e.message, new RegExp(`^${type}\\.yaml:4: source\\.type: unknown source type "${type}"`));
        if (hint) assert.match(e.message, new RegExp(`\\(did you mean "${hint}"\\?\\)`));
        else assert.doesNotMatch(e.message, /did you mean/);
        assert.equal(e.fix, 'use one of: mysql, postgres');
        return true;
      });
    }
  });

  it('in a pipelines: list, and when the type is missing', async () => {
    const two = 'pipelines:\n  - name: a\n    source: { type: postgres, url: x }\n    sinks: [{ name: s, type: stdout }]\n  - name: b\n    source: { type: mysqll, url: y }\n    sinks: [{ name: s, type: stdout }]\n';
    await assert.rejects(loadConfig([file('two.yaml', two)], {}), (e: Coded) => {
      assert.equal(e.code, 'TRB1015');
      assert.match(e.message, /^two\.yaml:6: pipelines\[1\]\.source\.type: unknown source type "mysqll" \(did you mean "mysql"\?\)/);
      return true;
    });
    await assert.rejects(loadConfig([file('none.yaml', 'name: a\nsource:\n  url: x\nsinks: [{ name: s, type: stdout }]\n')], {}), (e: Coded) => {
      assert.equal(e.code, 'TRB1015');
      assert.match(e.message, /^none\.yaml:3: source\.type: no source type given/);
      assert.equal(e.fix, 'use one of: mysql, postgres');
      return true;
    });
  });

  it('a known type still reports its own fields', async () => {
    await assert.rejects(loadConfig([file('ok.yaml', 'name: a\nsource: { type: mysql, urll: x }\nsinks: [{ name: s, type: stdout }]\n')], {}), (e: Coded) => {
      assert.equal(e.code, 'TRB1003');
      assert.match(e.message, /ok\.yaml:2: source\.urll: unknown key \(did you mean "url"\?\)/);
      return true;
    });
  });
});
