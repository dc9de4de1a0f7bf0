import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SinkCheckpointRecord, StateStore } from './store.js';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import { FileLock } from './file-lock.js';
import { FileDeadLetters, type DeadLetterQueue } from './dead-letters.js';

/**
 * State in plain files: `<dir>/<pipeline>/sink.<name>.json` and `<dir>/<pipeline>/<key>.json`.
 * Each write goes to a temporary file, is fsynced, renamed over the old one, and the
 * directory is fsynced, so a crash leaves either the old or the new checkpoint, never half.
 */
export class FileStateStore implements StateStore {
  private readonly made = new Set<string>();
  private readonly locks: FileLock[] = [];
  private closed?: Promise<void>;

  constructor(readonly dir: string) {}

  private async pdir(pipeline: string): Promise<string> {
    const d = join(this.dir, safe(pipeline));
    if (!this.made.has(d)) {
      await mkdir(d, { recursive: true });
      this.made.add(d);
    }
    return d;
  }

  async loadSinks(pipeline: string): Promise<Record<string, SinkCheckpointRecord>> {
    const d = await this.pdir(pipeline);
    const out: Record<string, SinkCheckpointRecord> = {};
    for (const f of await readdir(d)) {
      const m = /^sink\.(.+)\.json$/.exec(f);
      if (!m) continue;
      out[decodeURIComponent(m[1]!)] = JSON.parse(await readFile(join(d, f), 'utf8'));
    }
    return out;
  }

  async saveSink(pipeline: string, sink: string, rec: SinkCheckpointRecord): Promise<void> {
    await this.writeAtomic(await this.pdir(pipeline), `sink.${safe(sink)}.json`, JSON.stringify(rec));
  }

  async get<T>(pipeline: string, key: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(join(await this.pdir(pipeline), `${safe(key)}.json`), 'utf8')) as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async put(pipeline: string, key: string, value: unknown): Promise<void> {
    await this.writeAtomic(await this.pdir(pipeline), `${safe(key)}.json`, JSON.stringify(value));
  }

  async delete(pipeline: string, key: string): Promise<void> {
    await rm(join(await this.pdir(pipeline), `${safe(key)}.json`), { force: true });
  }

  /** `<dir>/<pipeline>/dlq.<sink>.jsonl` (see FileDeadLetters). */
  deadLetters(pipeline: string, sink: string): DeadLetterQueue {
    return new FileDeadLetters(join(this.dir, safe(pipeline)), sink);
  }

  private async writeAtomic(dir: string, name: string, text: string): Promise<void> {
    const tmp = join(dir, `.${name}.${process.pid}.tmp`);
    try {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(dir, name));
      const dh = await open(dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (err) {
      throw new TributaryError(ErrorCodes.STATE_STORE, `cannot write state file ${join(dir, name)}: ${(err as Error).message}`, {
        fix: 'check that state.dir is on a writable local disk with free space',
        cause: err,
        retryable: true,
      });
    }
  }

  /** Take the pipeline's exclusive lock (see FileLock); `close()` releases it. */
  async lock(pipeline: string, logger?: Logger): Promise<void> {
    this.locks.push(await FileLock.acquire(await this.pdir(pipeline), pipeline, logger));
  }

  /** Idempotent: releases the locks this store took. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      for (const l of this.locks) await l.release();
    })());
  }
}

function safe(s: string): string {
  return encodeURIComponent(s);
}
