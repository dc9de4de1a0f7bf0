/**
 * The conformance kit must be able to fail. Three plugins that broke in real pipelines (state
 * that is a Map, state holding a BigInt, a writeJson path without newlines) and one that
 * rejects poison with a plain Error each fail the kit with a message naming the fault; a kit
 * run without a poison case fails unless the sink states why it has none; a correct plugin
 * (the jsonl sink, in test/sinks/jsonl-conformance.test.ts) passes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import type { ChangeEvent } from '../../src/core/event.js';
import type { SinkDefinition } from '../../src/sdk/index.js';
import { conformanceCases, type ConformanceOptions } from '../../src/testing/index.js';
import { REPO } from '../helpers/context.js';

const dir = mkdtempSync(join(tmpdir(), 'tributary-kit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Run every case of the kit against a fixture plugin; returns case name → failure message (or 'ok' / 'skipped'). */
async function runKit(fixture: string, extra: Partial<ConformanceOptions> = {}): Promise<Map<string, string>> {
  const module = pathToFileURL(join(REPO, 'test', 'fixtures', 'broken-sinks', fixture));
  const definition = ((await import(module.href)) as { default: SinkDefinition }).default;
  const path = join(dir, `${fixture}.jsonl`);
  const cases = conformanceCases({
    definition,
    module,
    config: { path },
    kind: 'append',
    noPoison: 'a file takes any line',
    async reset() {
      rmSync(path, { force: true });
    },
    async readState() {
      if (!existsSync(path)) return [];
      return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as ChangeEvent);
    },
    ...extra,
  });
  const out = new Map<string, string>();
  for (const c of cases) {
    if (c.skip) {
      out.set(c.name, 'skipped');
      continue;
    }
    try {
      await c.run();
      out.set(c.name, 'ok');
    } catch (err) {
      out.set(c.name, (err as Error).message);
    }
  }
  return out;
}

function failures(r: Map<string, string>): string[] {
  return [...r].filter(([, m]) => m !== 'ok' && m !== 'skipped').map(([n, m]) => `${n}: ${m.split('\n')[0]}`);
}

describe('the conformance kit fails broken plugins, each with a clear message', { concurrency: false }, () => {
  it('checkpoint state that is a Map (stored as {} by JSON)', async () => {
    const f = failures(await runKit('map-state.js'));
    assert.ok(f.length > 0, 'the kit fails it');
    assert.ok(f.every((m) => /checkpoint\(\) (must )?return(s|ed)? (state that is not )?plain JSON.*state is a Map \(JSON stores it as \{\}\)/.test(m)), f.join('\n'));
    console.log(`# map-state: ${f.length} case(s) fail, e.g. "${f[0]}"`);
  });

  it('checkpoint state holding a BigInt', async () => {
    const f = failures(await runKit('bigint-state.js'));
    assert.ok(f.length > 0, 'the kit fails it');
    assert.ok(f.every((m) => /plain JSON.*state\.offset is a BigInt/.test(m)), f.join('\n'));
    console.log(`# bigint-state: ${f.length} case(s) fail, e.g. "${f[0]}"`);
  });

  it('a writeJson fast path that forgets the newline', async () => {
    const r = await runKit('bad-writejson.js');
    const f = failures(r);
    assert.ok(f.length > 0, 'the kit fails it');
    assert.match(r.get('the writeJson fast path gives the same target as json')!, /events with writeJson.*reading the target failed.*writeJson/s);
    console.log(`# bad-writejson: ${f.length} case(s) fail, e.g. "${f[0]!.slice(0, 300)}"`);
  });

  it('a poison event rejected with a plain Error, not PoisonEventError', async () => {
    const r = await runKit('plain-error-poison.js', { noPoison: undefined, poison: (base) => ({ ...base, after: { ...base.after, poison: true } }) });
    const m = r.get('a poison event is rejected with PoisonEventError, and the rest can still be written')!;
    assert.match(m, /must make write\(\) reject with PoisonEventError.*Got: Error: row violates the target constraint/);
    assert.equal(failures(r).length, 1, `everything else passes; failed: ${failures(r).join(' | ')}`);
    console.log(`# plain-error-poison: "${m.split('\n')[0]!.slice(0, 200)}"`);
  });

  it('the poison case is mandatory: without `poison` or a stated `noPoison` reason it fails; with a reason it is skipped and says why', async () => {
    const r = await runKit('plain-error-poison.js', { noPoison: undefined });
    assert.match(r.get('a poison event is rejected with PoisonEventError, and the rest can still be written')!, /the poison case is mandatory/);
    const cases = conformanceCases({
      definition: { type: 'x' } as SinkDefinition,
      module: 'x',
      config: {},
      kind: 'append',
      noPoison: 'every line is accepted',
      readState: async () => [],
      reset: async () => undefined,
    });
    assert.equal(cases.find((c) => /poison/.test(c.name))!.skip, 'no poison event for x: every line is accepted');
  });

  it('the crash case needs the module, to run the sink in a child process', async () => {
    const r = await runKit('plain-error-poison.js', { module: undefined as unknown as string });
    assert.match(r.get('a SIGKILL of the process in the middle of a batch loses and duplicates nothing')!, /needs `module`/);
  });
});

describe('plugin loading', () => {
  it('a plugin built against another zod major gets TRB3015 naming the version needed', async () => {
    const { resolveSink } = await import('../../src/runtime/sink-registry.js');
    const { TributaryError } = await import('../../src/core/errors.js');
    await assert.rejects(
      () => resolveSink('./zod3-sink.js', join(REPO, 'test', 'fixtures', 'broken-sinks')),
      (err: unknown) =>
        err instanceof TributaryError && err.code === 'TRB3015' && /built against zod 3.*tributary needs zod 4/.test(err.message) && /npm install zod@\^4/.test(err.fix ?? ''),
    );
  });

  it('`tributary validate` reports it with the code and the fix (exit 2)', async () => {
    const { TempDir, TributaryProcess } = await import('../helpers/context.js');
    await using d = new TempDir();
    const cfg = d.file(
      'v.yaml',
      `name: zod3\nsource: { type: postgres, url: postgres://127.0.0.1/x, tables: [public.t] }\nsinks:\n  - { name: s, type: ${join(REPO, 'test', 'fixtures', 'broken-sinks', 'zod3-sink.js')}, path: /dev/null }\n`,
    );
    const r = await TributaryProcess.run(['validate', '--config', cfg]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /TRB3015 .*sink plugin ".*zod3-sink\.js" was built against zod 3: its config schema is a zod 3 object, and tributary needs zod 4/);
    assert.match(r.stderr, /fix: in the plugin project, install zod 4 \(npm install zod@\^4\)/);
    console.log(`# zod 3 plugin: ${/TRB3015[^\n]*/.exec(r.stderr)![0].slice(0, 160)}`);
  });
});
