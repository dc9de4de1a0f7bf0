import { existsSync } from 'node:fs';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import { Compactor, type CompactedState } from './compaction.js';
import { SegmentLog } from './segment-log.js';

/**
 * A log as the tools read it (`log info`, `log read`, `state`, `rewind`, the HTTP API): its
 * segments and the compacted state in force. Either the running pipeline's own log (nothing
 * to open or close), or one opened read-only from disk, which never writes, recovers or
 * locks anything, so it is safe beside the process that appends to it.
 */
export interface LogView {
  readonly log: SegmentLog;
  readonly compacted: CompactedState | null;
  /** Release what {@link openLogView} opened; a no-op for a running pipeline's log. Idempotent. */
  close(): Promise<void>;
}

/** The log in `dir`, read-only. TRB5012 when there is none (the pipeline never ran with the log). */
export async function openLogView(dir: string): Promise<LogView> {
  if (!existsSync(dir)) {
    throw new TributaryError(ErrorCodes.LOG_MISSING, `there is no log in ${dir}`, {
      fix: 'run the pipeline once (tributary run) with stream: log, the default; or check that state.dir is the one the pipeline runs with',
    });
  }
  const log = await SegmentLog.open(dir, { readOnly: true });
  const compactor = new Compactor(dir, { tombstonesMs: 0, readOnly: true });
  try {
    await compactor.load();
  } catch (err) {
    await log.close();
    throw err;
  }
  let closed: Promise<void> | undefined;
  return {
    log,
    get compacted() {
      return compactor.state;
    },
    close: () => (closed ??= Promise.all([log.close(), compactor.close()]).then(() => undefined)),
  };
}

/** A view of a log another part of this process holds open (the pipeline's LogStream). */
export function liveLogView(s: { log: SegmentLog; compacted: CompactedState | null }): LogView {
  return {
    log: s.log,
    get compacted() {
      return s.compacted;
    },
    close: async () => undefined,
  };
}

/** Offset after the last durable commit: what a reader may treat as settled history. */
export function committedEnd(log: SegmentLog): number {
  return log.lastCommit ? log.lastCommit.offset + 1 : log.start;
}
