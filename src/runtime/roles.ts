import type { Logger } from 'pino';
import { ConfigError, ErrorCodes, TributaryError } from '../core/errors.js';
import type { ResolvedPipeline, ResolvedSink } from '../config/load.js';
import { FileLock } from '../state/file-lock.js';
import { describeHolder } from '../state/holder.js';
import { pipelineLogDir } from '../stream/open.js';

/**
 * Which parts of a pipeline a `tributary run` process runs (`--role`):
 * - `all` (the default): the source and every sink, in one process;
 * - `source`: the source only, appending to the embedded log (the one writer);
 * - `sinks`: sink runners only, reading the log another process writes (`--sink` picks which).
 */
export type RunRole = 'all' | 'source' | 'sinks';

export const RUN_ROLES: readonly RunRole[] = ['all', 'source', 'sinks'];

/** What one process runs: its role, and with `--sink` the sinks it is limited to (null: all of them). */
export interface RoleSpec {
  role: RunRole;
  sinks: readonly string[] | null;
}

export const ALL_ROLES: RoleSpec = { role: 'all', sinks: null };

/** Whether this process runs the source (and so writes the log). */
export function runsSource(spec: RoleSpec): boolean {
  return spec.role !== 'sinks';
}

/**
 * Checks `--role` and `--sink` against a pipeline before anything starts: a role other than
 * `all` needs the embedded log (the processes meet only there), `--sink` must name sinks the
 * pipeline has, and a source-only process runs no sink. Throws a ConfigError (exit 2).
 */
export function checkRole(p: ResolvedPipeline, spec: RoleSpec): void {
  const name = p.config.name;
  if (spec.role !== 'all' && p.config.stream.type !== 'log') {
    throw new ConfigError(ErrorCodes.ROLE_NEEDS_LOG, `run --role ${spec.role}: pipeline ${name} has stream type ${p.config.stream.type}; a source and its sinks can run in separate processes only over the embedded log`, {
      fix: 'use stream: { type: log } (the default), or run the pipeline in one process (--role all)',
    });
  }
  if (!spec.sinks) return;
  if (spec.role === 'source') {
    throw new ConfigError(ErrorCodes.ROLE_USAGE, 'run --role source runs no sink, so --sink has nothing to pick', { fix: 'drop --sink, or use --role sinks --sink NAME' });
  }
  const known = p.sinks.map((s) => s.base.name);
  const unknown = spec.sinks.filter((s) => !known.includes(s));
  if (unknown.length) {
    throw new ConfigError(ErrorCodes.ROLE_USAGE, `run --sink: pipeline ${name} has no sink named ${unknown.map((s) => `"${s}"`).join(', ')}`, { fix: `name one of: ${known.join(', ')}` });
  }
}

/** The sinks this process runs. */
export function sinksFor(p: ResolvedPipeline, spec: RoleSpec): ResolvedSink[] {
  if (spec.role === 'source') return [];
  return spec.sinks ? p.sinks.filter((s) => spec.sinks!.includes(s.base.name)) : p.sinks;
}

/** `writer.lock`: held by the one process that appends to the log. */
export const WRITER_LOCK = 'writer.lock';

/** `sink.<name>.lock`: held by the one process that runs sink `name`. */
export function sinkLockFile(sink: string): string {
  return `sink.${encodeURIComponent(sink)}.lock`;
}

/**
 * The locks of a process's parts, in the log's directory (`<state.dir>/<pipeline>/log/`): the
 * writer's, when it runs the source, and one per sink it runs. They are file locks like the
 * pipeline's (pid, host and start time, touched every 5 s; a dead holder's is taken over at
 * once), so a SIGKILLed process can be restarted straight away, while a second live writer, or
 * a sink already running elsewhere, is refused (TRB5020, TRB5021). They sit beside the log
 * whatever the state store is: the processes share the log, so they share one machine.
 */
export class RoleLocks {
  private released?: Promise<void>;

  private constructor(private readonly locks: FileLock[]) {}

  /** Take the locks of `spec`'s parts of pipeline `p` (nothing for a pipeline without the log). */
  static async acquire(p: ResolvedPipeline, spec: RoleSpec, logger?: Logger): Promise<RoleLocks> {
    if (p.config.stream.type !== 'log') return new RoleLocks([]);
    const dir = pipelineLogDir(p.config);
    const name = p.config.name;
    const taken: FileLock[] = [];
    try {
      if (runsSource(spec)) {
        taken.push(
          await FileLock.acquire(dir, name, logger, {
            file: WRITER_LOCK,
            what: `the log writer lock of pipeline ${name}`,
            refused: (path, holder, stale) =>
              new TributaryError(ErrorCodes.ROLE_WRITER_LOCKED, `pipeline ${name}: another process already runs its source and writes its log${holder ? ` (${describeHolder(holder)})` : ''}; the log has one writer (${path})`, {
                fix: stale
                  ? `stop that process first; its lock is free once it has not refreshed it for ${stale}`
                  : 'stop the other `tributary run --role source` (or `--role all`) of this pipeline first, or run this process with --role sinks',
              }),
          }),
        );
      }
      for (const s of sinksFor(p, spec)) {
        const sink = s.base.name;
        taken.push(
          await FileLock.acquire(dir, name, logger, {
            file: sinkLockFile(sink),
            what: `the lock of sink ${sink} of pipeline ${name}`,
            refused: (path, holder, stale) =>
              new TributaryError(ErrorCodes.ROLE_SINK_LOCKED, `pipeline ${name}: sink ${sink} already runs in another process${holder ? ` (${describeHolder(holder)})` : ''} (${path}); two processes on one sink would overwrite each other's checkpoints and output`, {
                fix: stale
                  ? `stop that process first; its lock is free once it has not refreshed it for ${stale}`
                  : `leave sink ${sink} out of this process (--role sinks --sink OTHER ...), or stop the process that runs it first`,
              }),
          }),
        );
      }
    } catch (err) {
      for (const l of taken) await l.release();
      throw err;
    }
    return new RoleLocks(taken);
  }

  /** Release every lock (idempotent). */
  release(): Promise<void> {
    return (this.released ??= (async () => {
      for (const l of this.locks) await l.release();
    })());
  }
}
