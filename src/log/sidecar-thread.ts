import { Worker } from 'node:worker_threads';
import type { KeyRun } from './key-index.js';
import { writeSidecarFile } from './sidecar.js';
import type { SidecarJob } from './sidecar-worker.js';

/**
 * Writes sealed segments' sidecars on one worker thread per process. Sorting and encoding a
 * segment's key entries (a few hundred thousand) took a tenth of a second of the appending
 * thread at each roll, while the other core idled on a MariaDB drain.
 *
 * The worker starts with the first sidecar, and holds the process open only while it has
 * work. If it cannot start, the sidecar is written on this thread instead.
 */
class SidecarThread {
  private worker: Worker | null = null;
  private broken = false;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

  /** Write the sidecar at `path`: `front` (sidecar.ts sidecarFront), then `run`'s key section. */
  write(path: string, front: Buffer, run: KeyRun): Promise<void> {
    const w = this.start();
    if (!w) return writeSidecarFile(path, front, run);
    const id = this.nextId++;
    const job: SidecarJob = { id, path, front, cols: run.columns() };
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) w.ref();
      w.postMessage(job);
    });
  }

  /** Whether sidecars are written on the worker thread (false once it could not start or died). */
  get onWorker(): boolean {
    return this.worker !== null && !this.broken;
  }

  private start(): Worker | null {
    if (this.worker || this.broken) return this.worker;
    try {
      const w = new Worker(new URL('./sidecar-worker.js', import.meta.url));
      w.on('message', (m: { id: number; error?: string }) => this.settle(m.id, m.error));
      w.on('error', (err) => this.fail(err));
      w.on('exit', () => this.fail(new Error('the sidecar worker thread exited')));
      w.unref();
      this.worker = w;
    } catch {
      this.broken = true;
    }
    return this.worker;
  }

  private settle(id: number, error?: string): void {
    const p = this.waiting.get(id);
    if (!p) return;
    this.waiting.delete(id);
    if (this.waiting.size === 0) this.worker?.unref();
    if (error) p.reject(new Error(error));
    else p.resolve();
  }

  /**
   * The worker died: what it had is failed (those sidecars are rebuilt at the next open), and
   * later sidecars are written on this thread.
   */
  private fail(err: Error): void {
    this.worker = null;
    this.broken = true;
    for (const p of this.waiting.values()) p.reject(err);
    this.waiting.clear();
  }
}

/** The process's sidecar writer. */
export const sidecarThread = new SidecarThread();
