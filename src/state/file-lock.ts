import { link, mkdir, open, readFile, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import { describeHolder, holderState, markHeld, newHolder, parseHolder, type Holder } from './holder.js';

/**
 * An exclusive lock on one pipeline's state directory: `<dir>/<pipeline>/pipeline.lock`,
 * holding the holder's pid, host and start time.
 *
 * Taken by hard-linking a complete temporary file to the lock path (atomic, and a reader
 * never sees a half-written lock). The holder touches the file every TOUCH_MS. A lock whose
 * holder is dead (same host: pid gone, a zombie, or reused) is stale and taken over at once;
 * one from another host (whose pid cannot be checked from here: a state directory on shared
 * storage, or a pod that came back under another name) is stale once it has not been touched
 * for STALE_MS. Any other lock is refused with TRB3011.
 */
export class FileLock {
  static readonly TOUCH_MS = 5_000;
  static readonly STALE_MS = 30_000;
  private released?: Promise<void>;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    readonly path: string,
    private readonly holder: Holder,
  ) {
    this.timer = setInterval(() => {
      const now = new Date();
      utimes(path, now, now).catch(() => undefined);
    }, FileLock.TOUCH_MS);
    this.timer.unref();
  }

  /**
   * Take the pipeline's lock `<pipelineDir>/pipeline.lock`, or another lock file in the same
   * manner: `opts.file` names it, and `opts.refused` makes the error for a live holder (the
   * run roles lock the log's writer and each sink this way, see src/runtime/role-locks.ts).
   */
  static async acquire(
    pipelineDir: string,
    pipeline: string,
    logger?: Logger,
    opts: { file?: string; what?: string; refused?: (path: string, holder: Holder | null, stale: string | null) => TributaryError } = {},
  ): Promise<FileLock> {
    await mkdir(pipelineDir, { recursive: true });
    const path = join(pipelineDir, opts.file ?? 'pipeline.lock');
    const lockedError = (pipeline: string, path: string, holder: Holder | null): TributaryError =>
      opts.refused ? opts.refused(path, holder, holder && holderState(holder) === 'unknown' ? `${FileLock.STALE_MS / 1000} s` : null) : pipelineLockedError(pipeline, path, holder);
    const me = newHolder();
    const tmp = `${path}.${me.token}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(me));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await link(tmp, path);
          markHeld(me, true);
          return new FileLock(path, me);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw lockError(err, path);
          if (attempt >= 10) throw lockedError(pipeline, path, null);
        }
        const holder = parseHolder(await readFile(path, 'utf8').catch(() => null));
        if (!holder) {
          // Not a lock this code wrote (or it vanished meanwhile): look again shortly.
          await new Promise((r) => setTimeout(r, 50));
          if (attempt >= 5) throw lockedError(pipeline, path, null);
          continue;
        }
        let state = holderState(holder);
        let why = 'which is not running';
        if (state === 'unknown') {
          const age = Date.now() - (await stat(path).then((st) => st.mtimeMs, () => Date.now()));
          if (age > FileLock.STALE_MS) {
            state = 'dead';
            why = `which has not refreshed it for ${Math.round(age / 1000)} s`;
          }
        }
        if (state !== 'dead') throw lockedError(pipeline, path, holder);
        // Stale. Move it aside under a name of our own, then check that what moved is the dead
        // holder's lock: a starter racing us may have replaced it with its own live one, which
        // then goes back in place.
        const aside = `${path}.${me.token}.stale`;
        try {
          await rename(path, aside);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw lockError(err, path);
        }
        const moved = parseHolder(await readFile(aside, 'utf8').catch(() => null));
        if (moved && moved.token !== holder.token) {
          await link(aside, path).catch(() => undefined);
          await rm(aside, { force: true });
          throw lockedError(pipeline, path, moved);
        }
        await rm(aside, { force: true });
        logger?.warn({ lock: path, stale: holder }, `${opts.what ?? `state lock of pipeline ${pipeline}`} was left by ${describeHolder(holder)}, ${why}: taken over`);
      }
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Remove the lock if it is still ours. Idempotent. */
  release(): Promise<void> {
    return (this.released ??= (async () => {
      clearInterval(this.timer);
      markHeld(this.holder, false);
      const cur = parseHolder(await readFile(this.path, 'utf8').catch(() => null));
      if (cur?.token === this.holder.token) await unlink(this.path).catch(() => undefined);
    })());
  }
}

function pipelineLockedError(pipeline: string, path: string, holder: Holder | null): TributaryError {
  return new TributaryError(
    ErrorCodes.STATE_LOCKED,
    `pipeline ${pipeline} is already running${holder ? ` (${describeHolder(holder)})` : ''}: its state is locked by ${path}`,
    {
      fix: holder && holderState(holder) === 'unknown'
        ? `stop the pipeline on ${holder.host} first; its lock is free once that process has not refreshed it for ${FileLock.STALE_MS / 1000} s`
        : 'stop the other `tributary run` of this pipeline first (two processes on one pipeline would overwrite each other\'s checkpoints), or give this one another `name` or `state.dir`',
    },
  );
}

function lockError(err: unknown, path: string): TributaryError {
  return new TributaryError(ErrorCodes.STATE_STORE, `cannot create the state lock ${path}: ${(err as Error).message}`, {
    fix: 'check that state.dir is on a writable local disk (a filesystem with hard links)',
    cause: err,
  });
}
