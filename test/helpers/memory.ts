import { createReadStream, existsSync, readFileSync } from 'node:fs';

/** Newlines in a file, streamed (the file is hundreds of MB). */
export async function countLines(path: string): Promise<number> {
  if (!existsSync(path)) return 0;
  let n = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
  }
  return n;
}

/** A process's peak (VmHWM) or current (VmRSS) resident set size, in bytes. */
export function vm(pid: number, field: 'VmHWM' | 'VmRSS' = 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
