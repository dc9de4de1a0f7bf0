import type { FileHandle } from 'node:fs/promises';

/**
 * Write all of `bufs` at `position`. A write may come back short (a full disk stops it part
 * way): the rest is written again, which surfaces the error, instead of counting bytes as
 * written (for the log: durable) that are not in the file.
 */
export async function writeFully(fh: Pick<FileHandle, 'writev'>, bufs: Buffer[], position: number): Promise<void> {
  let rest = bufs;
  while (rest.length) {
    let n = (await fh.writev(rest, position)).bytesWritten;
    if (n === 0) throw new Error('a write made no progress');
    position += n;
    let i = 0;
    while (i < rest.length && n >= rest[i]!.length) n -= rest[i++]!.length;
    rest = rest.slice(i);
    if (n > 0) rest[0] = rest[0]!.subarray(n);
  }
}
