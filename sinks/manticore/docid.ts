/**
 * Document ids. RT indexes key documents by a positive 64-bit integer id, so:
 * - a single-column key holding an integer in 1..2^63-1 (a number or a decimal string) is
 *   used as is: ids stay readable and match the source table;
 * - anything else (text, UUID, composite keys, 0 or negatives) is hashed: the first 8 bytes
 *   of SHA-256 over the canonical JSON of the key values, masked to 63 bits (0 maps to 1).
 *   The hash is stable across processes and versions of Tributary.
 * `id: hash` forces the hash for every key (use it when a table mixes both kinds).
 */
import { createHash } from 'node:crypto';
import type { Row } from '../../src/sdk/index.js';

const MAX = 2n ** 63n - 1n;

export function hashId(key: Row): bigint {
  const h = createHash('sha256').update(JSON.stringify(Object.values(key))).digest();
  const n = h.readBigUInt64BE(0) & MAX;
  return n === 0n ? 1n : n;
}

export function docId(key: Row, mode: 'auto' | 'hash'): bigint {
  if (mode === 'auto') {
    const vals = Object.values(key);
    if (vals.length === 1) {
      const v = vals[0];
      if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return BigInt(v);
      if (typeof v === 'string' && /^[1-9]\d{0,18}$/.test(v) && BigInt(v) <= MAX) return BigInt(v);
    }
  }
  return hashId(key);
}
