/**
 * The sink's own high-water mark, in a small file under the sink's state directory:
 * `{ position, fence }` where `fence` is the fence of the last event applied (committed or
 * not) and `position` the last transaction position whose batch was fully applied. It is
 * written after the data, atomically (temp file, fsync, rename).
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface Mark {
  position: string | null;
  fence: string;
}

export async function readMark(path: string): Promise<Mark | null> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as Mark;
    return typeof m.fence === 'string' ? m : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function writeMark(path: string, m: Mark): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(m));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}
