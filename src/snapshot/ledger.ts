import { randomUUID } from 'node:crypto';
import type { Position } from '../core/source.js';
import type { SnapshotState, SnapshotTable } from './types.js';

/** Which chunk a window reads, and who waits for it to close (its worker; nobody for a remote chunk). */
export interface ChunkWindow {
  id: string;
  ti: number;
  ci: number;
  table: SnapshotTable;
  /** Called once when the window closes; `reread`: the chunk must be read again. */
  closed?: (reread: boolean) => void;
}

/**
 * A new window id for chunk `ci` of table `ti`: unique per read, so the watermarks of an
 * earlier read, an earlier run or another pipeline are never taken for this one's.
 */
export function windowId(s: SnapshotState, ti: number, ci: number): string {
  return `${s.id}/${ti}/${ci}/${randomUUID().slice(0, 8)}`;
}

/** A chunk whose rows went into the stream at its high watermark, waiting for every sink to hold them. */
export interface Emitted {
  snapshot: string;
  ti: number;
  ci: number;
  rows: number;
  /** The high watermark's transaction: the chunk is done once every sink holds it. */
  txn: Position;
}

/**
 * Where each chunk of the current snapshot is between its plan and its done flag: free to
 * read, being read (by a worker of this process), or emitted and waiting for the sinks. Done
 * flags themselves are in the {@link SnapshotState}.
 */
export class ChunkLedger {
  private readonly reading = new Set<string>();
  private emitted: Emitted[] = [];

  /** Chunks being read or emitted and not yet durable. */
  get atStake(): number {
    return this.reading.size + this.emitted.length;
  }

  /** Whether some emitted chunk waits for the sinks. */
  get waiting(): boolean {
    return this.emitted.length > 0;
  }

  /** Whether chunk `ci` of table `ti` is neither done, nor being read, nor waiting for the sinks. */
  isFree(s: SnapshotState, ti: number, ci: number): boolean {
    return !s.tables[ti]!.done[ci] && !this.reading.has(tag(s, ti, ci)) && !this.emitted.some((p) => p.snapshot === s.id && p.ti === ti && p.ci === ci);
  }

  /** The first free chunk, in table then key order, or null. */
  nextFree(s: SnapshotState): { ti: number; ci: number } | null {
    for (let ti = 0; ti < s.tables.length; ti++) {
      const t = s.tables[ti]!;
      for (let ci = 0; ci < t.chunks.length; ci++) if (this.isFree(s, ti, ci)) return { ti, ci };
    }
    return null;
  }

  /** How many chunks are free. */
  freeCount(s: SnapshotState): number {
    let n = 0;
    s.tables.forEach((t, ti) => t.done.forEach((_, ci) => void (this.isFree(s, ti, ci) && n++)));
    return n;
  }

  /** Whether some chunk is still to be found, or neither done nor being read. */
  hasUnread(s: SnapshotState): boolean {
    return s.tables.some((t, ti) => t.open || t.done.some((d, ci) => !d && !this.reading.has(tag(s, ti, ci))));
  }

  /** A worker reads the chunk: returns the call that gives it back (read, failed or abandoned). */
  take(s: SnapshotState, ti: number, ci: number): () => void {
    const k = tag(s, ti, ci);
    this.reading.add(k);
    return () => void this.reading.delete(k);
  }

  /** A chunk's rows went into the stream. */
  emit(e: Emitted): void {
    this.emitted.push(e);
  }

  /**
   * Every sink holds everything up to `position`: returns the emitted chunks of `s` that are
   * now durable, and forgets them (and any of another snapshot).
   */
  durable(s: SnapshotState, position: Position): Emitted[] {
    const done: Emitted[] = [];
    const still: Emitted[] = [];
    for (const p of this.emitted) {
      if (p.snapshot !== s.id) continue;
      if (p.txn.compare(position) <= 0) done.push(p);
      else still.push(p);
    }
    this.emitted = still;
    return done;
  }

  /** Forget the emitted chunks (a new snapshot, or a cancel). */
  forgetEmitted(): void {
    this.emitted = [];
  }
}

function tag(s: SnapshotState, ti: number, ci: number): string {
  return `${s.id}:${ti}:${ci}`;
}
