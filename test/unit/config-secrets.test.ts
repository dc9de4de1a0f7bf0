import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'tributary-secrets-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  return p;
};
const pipeline = (source: string, rest = 'sinks: [{ name: s, type: stdout }]') => `name: a\nsource: ${source}\n${rest}\n`;

/** The error's whole text (message and fix) as a user sees it. */
async function failure(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  throw new Error('expected a ConfigError');
}

describe('passwords and URLs in a config', () => {
  it('a # in a URL password is a coded error that shows no part of the URL', async () => {
    for (const [url, why] of [
      ['postgres://cdc:Xy7#tailSECRET@db.example.org:5432/shop', /"#"/],
      ['mysql://cdc:Xy7%zztailSECRET@db.example.org:3306/', /"%"/],
      ['postgres://cdc:Xy7?tailSECRET@db.example.org:5432/shop', /.+/],
    ] as const) {
      const e = await failure(loadConfig([file('hash.yaml', pipeline(`{ type: ${url.startsWith('mysql') ? 'mysql' : 'postgres'}, url: "${url}" }`))], {}));
      assert.equal(e.code, 'TRB1010', url);
      const text = `${e.message}\n${e.fix}`;
      assert.match(text, /hash\.yaml:2: source\.url: /);
      assert.match(e.message, why);
      for (const part of ['Xy7', 'tailSECRET', 'SECRET', 'db.example', 'cdc:', 'shop']) assert.ok(!text.includes(part), `${url}: the error shows "${part}": ${text}`);
      assert.match(e.fix!, /percent-encode.*# is %23.*password:/);
    }
  });

  it('a sink or state URL is checked the same way', async () => {
    const e = await failure(loadConfig([file('sink.yaml', pipeline('{ type: postgres, url: "postgres://u@h/db" }', 'sinks: [{ name: c, type: redis, url: "redis://:pa#ss@h:6379" }]'))], {}));
    assert.equal(e.code, 'TRB1010');
    assert.match(e.message, /sinks\[0\]\.url/);
    assert.ok(!e.message.includes('pa') || !e.message.includes('ss@'));
  });

  it('password: and password_file: go into the source URL percent-encoded; conflicts are refused', async () => {
    const secret = 'p#ss%w@rd?/:x y';
    const inline = await loadConfig([file('pw.yaml', pipeline(`{ type: postgres, url: "postgres://cdc@127.0.0.1:5432/shop?sslmode=disable", password: "${secret}" }`))], {});
    const url = new URL(inline.pipelines[0]!.config.source.url);
    assert.equal(decodeURIComponent(url.password), secret);
    assert.equal(url.hostname, '127.0.0.1');
    assert.equal(url.search, '?sslmode=disable');
    assert.equal((inline.pipelines[0]!.config.source as { password?: string }).password, undefined, 'the field is consumed');

    file('secrets/pg', `${secret}\n`);
    const fromFile = await loadConfig([file('pwf.yaml', pipeline('{ type: mysql, url: "mysql://cdc@127.0.0.1:3306/", password_file: secrets/pg }'))], {});
    assert.equal(decodeURIComponent(new URL(fromFile.pipelines[0]!.config.source.url).password), secret, 'read relative to the config file, newline trimmed');

    assert.equal((await failure(loadConfig([file('both.yaml', pipeline('{ type: mysql, url: "mysql://cdc@h/", password: x, password_file: secrets/pg }'))], {}))).code, 'TRB1012');
    assert.equal((await failure(loadConfig([file('twice.yaml', pipeline('{ type: mysql, url: "mysql://cdc:old@h/", password: x }'))], {}))).code, 'TRB1012');
    const missing = await failure(loadConfig([file('missing.yaml', pipeline('{ type: mysql, url: "mysql://cdc@h/", password_file: secrets/nope }'))], {}));
    assert.equal(missing.code, 'TRB1011');
    assert.match(missing.message, /missing\.yaml:2: source\.password_file: cannot read .*secrets\/nope: ENOENT/);
    assert.equal((await failure(loadConfig([file('nouser.yaml', pipeline('{ type: mysql, url: "mysql://h/", password: x }'))], {}))).code, 'TRB1010');
  });

  it("a sink's password_file is read into its password", async () => {
    file('secrets/ch', 'ch-secret\n');
    const cfg = await loadConfig([file('ch.yaml', pipeline('{ type: postgres, url: "postgres://u@h/db" }', 'sinks: [{ name: c, type: clickhouse, password_file: secrets/ch }, { name: r, type: redis, password: "r#1" }]'))], {});
    assert.equal(cfg.pipelines[0]!.sinks[0]!.config.password, 'ch-secret');
    assert.equal(cfg.pipelines[0]!.sinks[0]!.config.password_file, undefined);
    assert.equal(cfg.pipelines[0]!.sinks[1]!.config.password, 'r#1');
  });

  it('http.auth_token_file is read (relative to the config); a short token and two tokens are refused', async () => {
    file('secrets/token', 'tok-0123456789abcdef\n');
    const cfg = await loadConfig([file('tok.yaml', pipeline('{ type: postgres, url: "postgres://u@h/db" }', 'sinks: [{ name: s, type: stdout }]\nhttp: { auth_token_file: secrets/token }'))], {});
    assert.equal(cfg.http.auth_token, 'tok-0123456789abcdef');
    assert.equal(cfg.http.open_probes, true);
    assert.equal(cfg.http.host, '127.0.0.1', 'loopback by default');
    const empty = await loadConfig([file('empty.yaml', pipeline('{ type: postgres, url: "postgres://u@h/db" }', 'sinks: [{ name: s, type: stdout }]\nhttp: { auth_token: "${T:-}" }'))], {});
    assert.equal(empty.http.auth_token, undefined, 'an empty value means no token');
    await assert.rejects(loadConfig([file('short.yaml', pipeline('{ type: postgres, url: "postgres://u@h/db" }', 'sinks: [{ name: s, type: stdout }]\nhttp: { auth_token: short }'))], {}), /short\.yaml:4: http\.auth_token: use at least 16 characters/);
    await assert.rejects(loadConfig([file('two.yaml', pipeline('{ type: postgres, url: "postgres://u@h/db" }', 'sinks: [{ name: s, type: stdout }]\nhttp: { auth_token: tok-0123456789abcdef, auth_token_file: secrets/token }'))], {}), /TRB1012|both auth_token and auth_token_file/);
  });
});

describe('relative paths in a config', () => {
  it("resolve against the config file's directory, whatever the working directory", async () => {
    const cfgPath = file(
      'sub/dir/rel.yaml',
      pipeline(
        '{ type: postgres, url: "postgres://u@h/db" }',
        'state: { type: file, dir: ./state }\nsinks:\n  - { name: j, type: jsonl, path: out/a.jsonl, dead_letter: { path: ../dl.jsonl } }\n  - { name: d, type: duckdb, path: /abs/x.duckdb }',
      ),
    );
    const cfg = await loadConfig([cfgPath], {});
    const p = cfg.pipelines[0]!;
    const base = join(dir, 'sub', 'dir');
    assert.equal(p.config.state.type === 'file' && p.config.state.dir, join(base, 'state'));
    assert.equal(p.sinks[0]!.config.path, join(base, 'out', 'a.jsonl'));
    assert.equal(p.sinks[0]!.base.dead_letter.path, join(dir, 'sub', 'dl.jsonl'));
    assert.equal(p.sinks[1]!.config.path, '/abs/x.duckdb', 'absolute paths stay');
    const dflt = await loadConfig([file('sub/dflt.yaml', pipeline('{ type: postgres, url: "postgres://u@h/db" }'))], {});
    const st = dflt.pipelines[0]!.config.state;
    assert.equal(st.type === 'file' && st.dir, join(dir, 'sub', '.tributary'), 'the default state dir sits beside the config');
  });
});
