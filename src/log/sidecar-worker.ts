/**
 * The worker thread of sidecar-thread.ts: sorts a sealed segment's key entries and writes its
 * sidecar file, off the thread that decodes and appends.
 */
import { parentPort } from 'node:worker_threads';
import { KeyRun, type KeyColumns } from './key-index.js';
import { writeSidecarFile } from './sidecar.js';

/** One sidecar to write: where, its front part, and the key entries (unsorted). */
export interface SidecarJob {
  id: number;
  path: string;
  front: Uint8Array;
  cols: KeyColumns;
}

parentPort?.on('message', (job: SidecarJob) => {
  const front = Buffer.from(job.front.buffer, job.front.byteOffset, job.front.byteLength);
  writeSidecarFile(job.path, front, KeyRun.fromColumns(job.cols)).then(
    () => parentPort!.postMessage({ id: job.id }),
    (err: unknown) => parentPort!.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
