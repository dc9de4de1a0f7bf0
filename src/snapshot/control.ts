import { ErrorCodes, TributaryError, errorMessage, type ErrorCode } from '../core/errors.js';
import type { SnapshotState } from './types.js';

/** A refused control request, shaped as the admin API's coded replies: `{ error, code, fix }`. */
export function refuse(status: number, code: ErrorCode, message: string, fix: string, extra: object = {}): ControlAnswer {
  return { status, body: { error: `${code} ${message}`, code, fix, ...extra } };
}

/** What `tributary snapshot` (POST /snapshot) asks for. */
export type ControlAction = 'start' | 'pause' | 'resume' | 'cancel';

/** The HTTP answer to a control request. */
export interface ControlAnswer {
  status: number;
  body: unknown;
}

/** What a control request acts on: the coordinator. */
export interface Controlled {
  /** The current snapshot, if any. */
  current(): SnapshotState | null;
  /** Plan, persist and start an incremental snapshot; throws (a coded error for a bad filter or table). */
  begin(tables: string[] | null, where: string | null): Promise<SnapshotState>;
  /**
   * The status of `s` was changed by `action` (and its failure report cleared): apply it (jobs,
   * windows, logs, the stored state).
   */
  changed(s: SnapshotState, action: Exclude<ControlAction, 'start'>): Promise<void>;
}

/**
 * The control API's rules: one snapshot at a time (a start while one is live answers 409),
 * pause, resume and cancel act on a snapshot that is neither done nor cancelled (else 404),
 * and a start that is refused (a bad `--where`, an unknown table) answers 400 with the error's
 * code and fix. A pause or cancel ends the report of a failure; a resume tries it again.
 */
export async function control(c: Controlled, action: ControlAction, table: string | null, where: string | null): Promise<ControlAnswer> {
  const s = c.current();
  if (action === 'start') {
    if (s && s.status !== 'done' && s.status !== 'cancelled') {
      return refuse(409, ErrorCodes.SNAPSHOT_BUSY, `snapshot ${s.id} is ${s.status}; cancel it or wait for it to finish`, '`tributary snapshot --cancel`, or wait until `tributary status` shows it done', { snapshot: summarize(s) });
    }
    try {
      const st = await c.begin(table ? [table] : null, where);
      return { status: 202, body: { started: st.id, snapshot: summarize(c.current()) } };
    } catch (err) {
      const coded = err instanceof TributaryError ? { code: err.code, fix: err.fix } : {};
      return { status: 400, body: { error: err instanceof TributaryError ? `${err.code} ${err.message}` : errorMessage(err), ...coded } };
    }
  }
  if (!s || s.status === 'done' || s.status === 'cancelled') return refuse(404, ErrorCodes.SNAPSHOT_NONE, 'no snapshot is running', 'start one first (`tributary snapshot --table …`)');
  s.status = action === 'pause' ? 'paused' : action === 'resume' ? 'running' : 'cancelled';
  delete s.error;
  await c.changed(s, action);
  return { status: 200, body: { snapshot: summarize(s) } };
}

/** A snapshot as `/status`, `tributary status` and the control API show it. */
export function summarize(s: SnapshotState | null): Record<string, unknown> | null {
  if (!s) return null;
  return {
    id: s.id,
    kind: s.kind,
    status: s.status,
    startedAt: new Date(s.startedAt).toISOString(),
    finishedAt: s.finishedAt ? new Date(s.finishedAt).toISOString() : null,
    error: s.error ?? null,
    tables: s.tables.map((t) => ({
      table: t.table.name,
      where: t.where,
      chunksDone: t.done.filter(Boolean).length,
      chunks: t.chunks.length,
      rows: t.rows,
      estimate: t.table.estimate,
    })),
  };
}
