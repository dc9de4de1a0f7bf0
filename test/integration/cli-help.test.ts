import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO, TributaryProcess } from '../helpers/context.js';

/** `--help` on every command, `--version`, and `help` (issue 12, section 9: help and output). */
describe('help and version', () => {
  const commands: [string[], RegExp][] = [
    [['run'], /^Usage: tributary run --config FILE/],
    [['validate'], /^Usage: tributary validate --config FILE/],
    [['status'], /^Usage: tributary status --config FILE/],
    [['snapshot'], /^Usage: tributary snapshot --config FILE --table T/],
    [['binlog', 'decode'], /^Usage: tributary binlog decode FILE\.\.\./],
    [['binlog'], /^Usage: tributary binlog decode FILE\.\.\./],
    [['demo'], /^Usage: tributary demo \[--duration SECONDS\]/],
    [['docs'], /^Usage: tributary docs config/],
    [['log'], /^Usage: tributary log info --config FILE/],
    [['log', 'read'], /^Usage: tributary log info --config FILE/],
    [['state'], /^Usage: tributary state --config FILE/],
    [['rewind'], /^Usage: tributary rewind --config FILE/],
    [['dlq'], /^Usage: tributary dlq list    --config FILE/],
  ];
  for (const [cmd, usage] of commands) {
    it(`tributary ${cmd.join(' ')} --help and -h print its usage (exit 0), and touch nothing`, { timeout: 30_000 }, async () => {
      for (const flag of ['--help', '-h']) {
        // Extra arguments (a missing config, a file) must not be acted on.
        const r = await TributaryProcess.run([...cmd, flag, '--config', '/nonexistent.yaml']);
        assert.equal(r.code, 0, `${cmd.join(' ')} ${flag}: ${r.stderr}`);
        assert.match(r.stdout, usage);
        assert.equal(r.stderr, '');
      }
    });
  }

  it('help lists every command, docs config included; help COMMAND prints its usage', { timeout: 30_000 }, async () => {
    const r = await TributaryProcess.run(['help']);
    assert.equal(r.code, 0);
    for (const c of ['run', 'validate', 'status', 'snapshot', 'binlog decode', 'log info\\|read', 'state', 'rewind', 'dlq', 'demo', 'docs config', 'version']) assert.match(r.stdout, new RegExp(`\\n  tributary ${c}\\b`), c);
    assert.match(r.stdout, /`tributary COMMAND --help`/);
    const s = await TributaryProcess.run(['help', 'snapshot']);
    assert.match(s.stdout, /^Usage: tributary snapshot/);
    const bad = await TributaryProcess.run(['help', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /TRB1006 no command "nope"/);
  });

  it('--version and version print the package version', { timeout: 30_000 }, async () => {
    const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    for (const arg of ['--version', 'version']) {
      const r = await TributaryProcess.run([arg]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, `tributary ${version}\n`);
    }
  });

  it('a bad demo option is a coded usage error (exit 2)', { timeout: 30_000 }, async () => {
    const r = await TributaryProcess.run(['demo', '--bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: TRB1006 Unknown option '--bogus'\n  fix: run `tributary demo --help`/);
  });
});
