import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'tributary-cfg-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('config loading', () => {
  it('applies defaults and ${VAR:-default}', async () => {
    const cfg = await loadConfig([file('a.yaml', 'name: a\nsource: { type: postgres, url: "postgres://u@${HOST:-localhost}/db" }\nsinks: [{ name: s, type: stdout }]\n')], {});
    const p = cfg.pipelines[0]!;
    assert.equal(p.config.source.url, 'postgres://u@localhost/db');
    assert.equal(p.config.source.type === 'postgres' && p.config.source.snapshot, 'initial');
    assert.deepEqual(p.config.stream, {
      type: 'log',
      retention: { max_age: 7 * 86_400_000 },
      compaction: { enabled: true, tombstones: 86_400_000 },
      partitions: 1,
      segment_bytes: 64 << 20,
      compression: 'none',
      max_bytes: 4 << 20,
      follow: 250,
    });
    assert.equal(cfg.http.port, 8083);
    assert.equal(p.sinks[0]!.base.batch.max_events, 2000);
    assert.deepEqual(p.sinks[0]!.config, { format: 'pretty' });
  });
  it('retired keys (decode_workers, snapshot_threads) load with a warning that says they are ignored, and are dropped', async () => {
    const cfg = await loadConfig(
      [file('retired.yaml', 'name: a\nsource:\n  type: mysql\n  url: mysql://u@h/\n  decode_workers: 1\n  snapshot_threads: true\nsinks: [{ name: s, type: stdout }]\n')],
      {},
    );
    const src = cfg.pipelines[0]!.config.source as Record<string, unknown>;
    assert.ok(!('decode_workers' in src) && !('snapshot_threads' in src), 'dropped from the resolved config');
    assert.equal(cfg.warnings.length, 2, cfg.warnings.join('\n'));
    assert.match(cfg.warnings[0]!, /^retired\.yaml:6: source\.snapshot_threads is deprecated and ignored: .*docs\/benchmarks\.md/);
    assert.match(cfg.warnings[1]!, /^retired\.yaml:5: source\.decode_workers is deprecated and ignored: .*docs\/benchmarks\.md/);
    const pg = await loadConfig([file('retired-pg.yaml', 'name: a\nsource: { type: postgres, url: x, snapshot_threads: false }\nsinks: [{ name: s, type: stdout }]\n')], {});
    assert.match(pg.warnings.join('\n'), /source\.snapshot_threads is deprecated and ignored/);
    // Still a key of MySQL only: Postgres never had decode_workers.
    await assert.rejects(loadConfig([file('retired-bad.yaml', 'name: a\nsource: { type: postgres, url: x, decode_workers: 1 }\nsinks: [{ name: s, type: stdout }]\n')], {}), ConfigError);
  });
  it('a pipelines: list runs several pipelines; duplicate names are refused', async () => {
    const two = 'pipelines:\n  - name: a\n    source: { type: postgres, url: x }\n    sinks: [{ name: s, type: stdout }]\n  - name: b\n    source: { type: mysql, url: y }\n    sinks: [{ name: s, type: "null" }]\n';
    const cfg = await loadConfig([file('two.yaml', two)], {});
    assert.deepEqual(cfg.pipelines.map((p) => p.config.name), ['a', 'b']);
    await assert.rejects(loadConfig([file('dup.yaml', two.replace('name: b', 'name: a'))], {}), (e: unknown) => e instanceof ConfigError && /dup\.yaml:5: pipelines\[1\]\.name: duplicate pipeline name "a"/.test(e.message));
  });
  it('sink names are unique; a missing required field names its path', async () => {
    await assert.rejects(
      loadConfig([file('s.yaml', 'name: a\nsource: { type: postgres, url: x }\nsinks:\n  - { name: s, type: stdout }\n  - { name: s, type: stdout }\n')], {}),
      /s\.yaml:5: sinks\[1\]\.name: duplicate sink name "s"/,
    );
    await assert.rejects(loadConfig([file('m.yaml', 'name: a\nsource: { type: postgres, url: x }\nsinks:\n  - name: j\n    type: jsonl\n')], {}), /m\.yaml:4: sinks\[0\]\.path: /);
    await assert.rejects(loadConfig([file('t.yaml', 'name: a\nsource: { type: oracle, url: x }\nsinks: [{ name: s, type: stdout }]\n')], {}), /t\.yaml:2: source\.type: /);
  });
  it("a sink's preferred batch sizes apply unless the YAML sets batch", async () => {
    const cfg = await loadConfig([file('b.yaml', 'name: a\nsource: { type: postgres, url: x }\nsinks:\n  - { name: ch, type: clickhouse, url: "http://127.0.0.1:8123" }\n  - { name: ch2, type: clickhouse, url: "http://127.0.0.1:8123", batch: { max_events: 500 } }\n')], {});
    const [a, b] = cfg.pipelines[0]!.sinks;
    assert.equal(a!.base.batch.max_events, 20000);
    assert.equal(b!.base.batch.max_events, 500);
  });
});
