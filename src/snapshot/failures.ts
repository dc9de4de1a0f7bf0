import type { TributaryError } from '../core/errors.js';
import { backoffDelay } from '../runtime/retry.js';

/**
 * Why a snapshot cannot go on, per step (reading a table's chunks, or cutting them), and how
 * long to wait before the next try.
 *
 * A snapshot that meets an error retrying cannot fix by itself (a missing privilege, a
 * signal table it may not write) is not given up: it stays resumable, is reported as failed
 * (status, readiness) and is tried again with exponential backoff, so it finishes on its own
 * once someone fixes the cause. A step is failing until it succeeds once. Pure: the
 * coordinator persists and logs.
 */
export class SnapshotFailures {
  private readonly byStep = new Map<string, TributaryError>();
  private attempts = 0;

  constructor(
    private readonly baseMs = 1000,
    private readonly maxMs = 60_000,
  ) {}

  /**
   * Notes that `step` failed with `err`. `first` is true when the snapshot was not failing
   * with this code before (so it is worth an error log); `delayMs` is the wait before the next
   * try, growing with every failure until something succeeds.
   */
  fail(step: string, err: TributaryError): { first: boolean; delayMs: number } {
    const first = ![...this.byStep.values()].some((e) => e.code === err.code && e.message === err.message);
    this.byStep.set(step, err);
    this.attempts++;
    return { first, delayMs: backoffDelay(this.attempts, this.baseMs, this.maxMs) };
  }

  /** `step` succeeded. True when this made the snapshot healthy again. */
  succeed(step: string): boolean {
    if (!this.byStep.delete(step)) return false;
    if (this.byStep.size) return false;
    this.attempts = 0;
    return true;
  }

  /** The error the snapshot is failing with, or null. */
  get current(): TributaryError | null {
    for (const e of this.byStep.values()) return e;
    return null;
  }

  /** How many tries failed since the snapshot was last healthy. */
  get failedAttempts(): number {
    return this.attempts;
  }

  clear(): void {
    this.byStep.clear();
    this.attempts = 0;
  }
}
