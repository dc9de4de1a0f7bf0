import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Who holds a pipeline's state lock (file store) or lease (Redis store): enough to tell a
 * live holder from one that died without releasing it, and to say who it is in an error.
 */
export interface Holder {
  /** Random per acquisition: tells this holder from a later one with the same pid. */
  token: string;
  pid: number;
  host: string;
  /** When the lock was taken (ISO-8601). */
  since: string;
  /**
   * The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), when
   * known: a pid that was reused by another process after the holder died has another one.
   */
  procStart?: number;
}

/** Tokens of the locks this process holds right now (several pipelines may run in one process). */
const heldHere = new Set<string>();

export function newHolder(): Holder {
  return { token: randomBytes(12).toString('hex'), pid: process.pid, host: hostname(), since: new Date().toISOString(), procStart: procStart(process.pid) };
}

export function markHeld(h: Holder, held: boolean): void {
  if (held) heldHere.add(h.token);
  else heldHere.delete(h.token);
}

/** Parse a holder record; null when it is not one (a half-written or foreign value). */
export function parseHolder(text: string | null | undefined): Holder | null {
  if (!text) return null;
  try {
    const h = JSON.parse(text) as Holder;
    return typeof h.token === 'string' && Number.isInteger(h.pid) && typeof h.host === 'string' ? h : null;
  } catch {
    return null;
  }
}

/**
 * Whether the holder still runs. `unknown` when it is on another host (its pid means nothing
 * here): then only the lock's owner, or its expiry, can free it.
 */
export function holderState(h: Holder): 'alive' | 'dead' | 'unknown' {
  if (h.host !== hostname()) return 'unknown';
  if (h.pid === process.pid) {
    // Ours: alive if a pipeline of this process holds it now; otherwise an earlier pipeline
    // of this process stopped without releasing it (a failed start).
    return heldHere.has(h.token) ? 'alive' : 'dead';
  }
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'dead';
  }
  // The pid exists; it is the holder only if it is the same process (not a reused pid), and
  // still running (a killed process its parent has not reaped yet is a zombie).
  const st = procStat(h.pid);
  if (st && (st.state === 'Z' || st.state === 'X')) return 'dead';
  if (h.procStart !== undefined && st?.start !== undefined && st.start !== h.procStart) return 'dead';
  return 'alive';
}

/** A holder in words, for errors and logs. */
export function describeHolder(h: Holder): string {
  return `pid ${h.pid} on host ${h.host}, since ${h.since}`;
}

function procStart(pid: number): number | undefined {
  return procStat(pid)?.start;
}

/** State letter and start time (clock ticks since boot) of a process, from /proc (Linux). */
function procStat(pid: number): { state: string; start: number | undefined } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return { state: fields[0]!, start: Number.isFinite(start) ? start : undefined };
  } catch {
    return undefined;
  }
}
