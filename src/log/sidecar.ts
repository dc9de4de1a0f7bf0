import { open, rename } from 'node:fs/promises';
import { closeSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { ErrorCodes, TributaryError } from '../core/errors.js';
import { dirname } from 'node:path';
import { KEY_ENTRY_BYTES, SortedKeys, encodeKeyRun, type KeyRun } from './key-index.js';
import type { CommitInfo, Segment } from './segment.js';
import { writeFully } from './write-fully.js';

/**
 * The sidecar of a sealed segment (`<base>.idx`): what a reader needs without scanning the
 * segment. It is derived data: when it is missing or fails its checksum, the segment is
 * scanned and the sidecar written again.
 *
 * ```
 * u32 magic 'TRBI', u32 version, u32 meta length, meta JSON,
 * f64 × n  offset index (offset), f64 × n (position),
 * f64 × m  time index (largest time so far), f64 × m (offset), f64 × m (position),
 * u32 CRC-32 of everything above
 * key entries (32 bytes each, sorted), key bytes, u32 CRC-32 of the key section
 * ```
 * The key section has its own checksum, checked the first time the segment's keys are
 * used, so opening a log with many segments reads only their small heads.
 */
const MAGIC = 0x49425254; // 'TRBI'
const VERSION = 1;

interface Meta {
  base: number;
  next: number;
  size: number;
  minTs: number | null;
  maxTs: number;
  lastCommit: CommitInfo | null;
  lastCommitEnd: number;
  idx: number;
  time: number;
  keys: number;
  keyBytes: number;
  tables: [number, string, string | null][];
}

/**
 * The sidecar's front part, checksum included: head, meta and the offset and time indexes of
 * `seg`, with the size of `run`'s key section (its entries are sorted and written after it,
 * by {@link writeSidecarFile}, which can run on another thread).
 */
export function sidecarFront(seg: Segment, run: KeyRun): Buffer {
  const meta: Meta = {
    base: seg.base,
    next: seg.next,
    size: seg.size,
    minTs: Number.isFinite(seg.minTs) ? seg.minTs : null,
    maxTs: seg.maxTs,
    lastCommit: seg.lastCommit,
    lastCommitEnd: seg.lastCommitEnd,
    idx: seg.idxOffset.length,
    time: seg.timeTs.length,
    keys: run.n,
    keyBytes: run.keyBytes,
    tables: [...run.tables].map(([h, t]) => [h, t.name, t.sampleKey]),
  };
  const metaBytes = Buffer.from(JSON.stringify(meta));
  const f64 = (a: number[]) => {
    const b = Buffer.allocUnsafe(a.length * 8);
    for (let i = 0; i < a.length; i++) b.writeDoubleLE(a[i]!, i * 8);
    return b;
  };
  const head = Buffer.allocUnsafe(12);
  head.writeUInt32LE(MAGIC, 0);
  head.writeUInt32LE(VERSION, 4);
  head.writeUInt32LE(metaBytes.length, 8);
  const front = Buffer.concat([head, metaBytes, f64(seg.idxOffset), f64(seg.idxPos), f64(seg.timeTs), f64(seg.timeOffset), f64(seg.timePos), Buffer.alloc(4)]);
  front.writeUInt32LE(crc32(front.subarray(0, front.length - 4)), front.length - 4);
  return front;
}

/**
 * Write a sidecar file atomically (a temporary file, fsynced, renamed, the directory
 * fsynced): `front` ({@link sidecarFront}), then `run`'s key entries sorted, with their
 * checksum. The sort and the encoding are most of a segment roll's CPU, so the writer runs
 * this on a worker thread (sidecar-thread.ts).
 */
export async function writeSidecarFile(path: string, front: Buffer, run: KeyRun): Promise<void> {
  const { entries, keys } = encodeKeyRun(run);
  // The key section is checksummed and written in its two parts: joined, it was a copy of
  // every key entry at each segment roll.
  const c2 = Buffer.allocUnsafe(4);
  c2.writeUInt32LE(crc32(keys, crc32(entries)), 0);
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await writeFully(fh, [front, entries, keys, c2], 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await syncDir(dirname(path));
}

/** Point `seg`'s keys at its sidecar, written with `front` for `run`'s entries. */
export function attachSidecar(seg: Segment, front: Buffer, run: KeyRun): void {
  seg.setKeys(keysFromFile(seg.sidecarPath, front.length, run.n, run.keyBytes));
  seg.tables = new Map(run.tables);
}

/** Write the sidecar of `seg` (sealed, with the key entries `run`) on this thread, and use it. */
export async function writeSidecar(seg: Segment, run: KeyRun): Promise<void> {
  const front = sidecarFront(seg, run);
  await writeSidecarFile(seg.sidecarPath, front, run);
  attachSidecar(seg, front, run);
}

/**
 * Load the sidecar of `seg` into it (indexes, last commit, keys). Returns false when the
 * sidecar is missing, damaged, or does not describe this segment: the caller rebuilds it.
 */
export function loadSidecar(seg: Segment, fileSize: number): boolean {
  let fd: number;
  try {
    fd = openSync(seg.sidecarPath, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.allocUnsafe(12);
    if (readSync(fd, head, 0, 12, 0) !== 12 || head.readUInt32LE(0) !== MAGIC || head.readUInt32LE(4) !== VERSION) return false;
    const metaLen = head.readUInt32LE(8);
    if (metaLen > 1 << 26) return false;
    const metaBuf = Buffer.allocUnsafe(metaLen);
    if (readSync(fd, metaBuf, 0, metaLen, 12) !== metaLen) return false;
    const meta = JSON.parse(metaBuf.toString('utf8')) as Meta;
    const arrays = (meta.idx * 2 + meta.time * 3) * 8;
    const rest = Buffer.allocUnsafe(arrays + 4);
    if (readSync(fd, rest, 0, rest.length, 12 + metaLen) !== rest.length) return false;
    const crc = crc32(rest.subarray(0, arrays), crc32(metaBuf, crc32(head)));
    if (crc !== rest.readUInt32LE(arrays)) return false;
    if (meta.base !== seg.base || meta.size !== fileSize) return false;
    const read = (i: number) => rest.readDoubleLE(i * 8);
    let k = 0;
    const take = (n: number, into: number[]) => {
      for (let i = 0; i < n; i++) into.push(read(k++));
    };
    take(meta.idx, seg.idxOffset);
    take(meta.idx, seg.idxPos);
    take(meta.time, seg.timeTs);
    take(meta.time, seg.timeOffset);
    take(meta.time, seg.timePos);
    seg.next = meta.next;
    seg.size = meta.size;
    seg.minTs = meta.minTs ?? Infinity;
    seg.maxTs = meta.maxTs;
    seg.lastCommit = meta.lastCommit;
    seg.lastCommitEnd = meta.lastCommitEnd;
    seg.sealed = true;
    seg.setKeys(keysFromFile(seg.sidecarPath, 12 + metaLen + arrays + 4, meta.keys, meta.keyBytes));
    seg.tables = new Map(meta.tables.map(([h, name, sampleKey]) => [h, { name, sampleKey }]));
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * Sorted keys read from a sidecar with preads. A lookup touches a few entries, so it does
 * not read the whole section to check its checksum (its caller checks the record it finds
 * instead); a full pass (a whole table, a compaction) verifies the section first.
 */
function keysFromFile(path: string, at: number, count: number, keyBytes: number): { keys: SortedKeys; close(): void } {
  let fd: number | null = null;
  const pread = (pos: number, len: number): Buffer => {
    fd ??= openSync(path, 'r');
    const b = Buffer.allocUnsafe(len);
    let n = 0;
    while (n < len) {
      const r = readSync(fd, b, n, len - n, pos + n);
      if (r === 0) throw new Error(`${path}: key index ends early`);
      n += r;
    }
    return b;
  };
  const sectionLen = count * KEY_ENTRY_BYTES + keyBytes;
  let verified = false;
  const verify = () => {
    if (verified) return;
    const all = pread(at, sectionLen + 4);
    if (crc32(all.subarray(0, sectionLen)) !== all.readUInt32LE(sectionLen)) {
      throw new TributaryError(ErrorCodes.LOG_CORRUPT, `the key index ${path} fails its checksum`, { fix: `delete ${path}: it is rebuilt from its segment at the next start` });
    }
    verified = true;
  };
  const close = () => {
    if (fd !== null) closeSync(fd);
    fd = null;
  };
  return { keys: new SortedKeys(count, pread, at, at + count * KEY_ENTRY_BYTES, verify), close };
}

/** fsync a directory, so a rename or a new file in it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
