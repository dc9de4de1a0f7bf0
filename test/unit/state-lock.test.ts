/** The file state lock's staleness rules (the process-level behaviour is in integration/state-safety). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TributaryError } from '../../src/core/errors.js';
import { FileStateStore } from '../../src/state/file-store.js';
import { TempDir } from '../helpers/context.js';

function leaveLock(dir: string, pipeline: string, holder: Record<string, unknown>, ageMs = 0): string {
  mkdirSync(join(dir, pipeline), { recursive: true });
  const p = join(dir, pipeline, 'pipeline.lock');
  writeFileSync(p, JSON.stringify({ token: 'old', since: 'then', ...holder }));
  const t = new Date(Date.now() - ageMs);
  utimesSync(p, t, t);
  return p;
}

test('a second store on the same pipeline is refused while the first holds the lock, and gets it once released', async () => {
  await using d = new TempDir();
  const a = new FileStateStore(d.path);
  await a.lock('p');
  const b = new FileStateStore(d.path);
  await assert.rejects(() => b.lock('p'), (err: unknown) => err instanceof TributaryError && err.code === 'TRB3011' && new RegExp(`pid ${process.pid}`).test(err.message));
  await a.close();
  await b.lock('p');
  await b.close();
});

test('a lock left by a dead process on this host is taken over at once', async () => {
  await using d = new TempDir();
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited and reaped
  leaveLock(d.path, 'p', { pid: dead, host: hostname() });
  const s = new FileStateStore(d.path);
  await s.lock('p');
  await s.close();
});

test('a lock from another host is refused while it is fresh, and taken over once not refreshed for 30 s', async () => {
  await using d = new TempDir();
  leaveLock(d.path, 'p', { pid: 1, host: 'elsewhere' }, 1000);
  await assert.rejects(() => new FileStateStore(d.path).lock('p'), (err: unknown) => err instanceof TributaryError && err.code === 'TRB3011' && /on host elsewhere/.test(err.message) && /30 s/.test(err.fix ?? ''));
  leaveLock(d.path, 'p', { pid: 1, host: 'elsewhere' }, 31_000);
  const s = new FileStateStore(d.path);
  await s.lock('p');
  await s.close();
});
