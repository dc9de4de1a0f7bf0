import type { SnapshotState, SnapshotTableState } from './types.js';

/** Whether chunks of `s` are read: it runs, or it failed and is tried again with backoff. */
export function isLive(s: SnapshotState | null | undefined): s is SnapshotState {
  return s?.status === 'running' || s?.status === 'failed';
}

/** Whether the chunks of a table are all found and all done. */
export function tableDone(t: SnapshotTableState): boolean {
  return !t.open && t.done.every(Boolean);
}

/** Chunks found but not done (an open table has more to come). */
export function remainingChunks(s: SnapshotState | null): number {
  return s ? s.tables.reduce((n, t) => n + t.done.filter((d) => !d).length, 0) : 0;
}
