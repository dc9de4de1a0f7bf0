/**
 * Reads a pipeline's log back after a test run, the way `tributary log read` does (read-only,
 * beside or after the writer), and checks the shape the log must have: transactions one after
 * the other, each one's events followed by its commit, commits in strictly increasing source
 * position order.
 */
import assert from 'node:assert/strict';
import type { ChangeEvent } from '../../src/core/event.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { positionSupport } from '../../src/runtime/positions.js';
import { logDir } from '../../src/stream/log-stream.js';

/** One committed transaction as the log holds it. */
export interface LoggedTxn {
  txn: string;
  resume: string;
  tsMs: number;
  /** Offset of its commit marker. */
  commit: number;
  events: ChangeEvent[];
}

/** The log's committed transactions, oldest first, read from `<stateDir>/<pipeline>/log`. */
export async function readLoggedTxns(stateDir: string, pipeline: string, sourceType: string): Promise<{ txns: LoggedTxn[]; start: number; end: number }> {
  const log = await SegmentLog.open(logDir(stateDir, pipeline), { readOnly: true });
  const positions = await positionSupport(sourceType);
  try {
    const txns: LoggedTxn[] = [];
    let open: ChangeEvent[] = [];
    let openTxn: string | null = null;
    let offset = log.start;
    let expected = log.start;
    while (offset < log.durableEnd) {
      const r = await log.read(offset, 10_000, 8 << 20);
      if (!r.records.length) break;
      for (const rec of r.records) {
        assert.equal(rec.offset, expected, 'log offsets count up by one, with no hole');
        expected++;
        if (openTxn !== null) assert.equal(rec.txn, openTxn, `offset ${rec.offset}: a record of transaction ${rec.txn} inside transaction ${openTxn} (interleaved or unfinished)`);
        if (rec.kind === 'event') {
          openTxn = rec.txn;
          open.push(JSON.parse(rec.buf.toString('utf8', rec.envStart, rec.envEnd)) as ChangeEvent);
        } else {
          const prev = txns.at(-1);
          if (prev) assert.ok(positions.parse(rec.txn).compare(positions.parse(prev.txn)) > 0, `commit at offset ${rec.offset}: position ${rec.txn} is not after the previous commit's ${prev.txn} (a transaction twice, or out of commit order)`);
          txns.push({ txn: rec.txn, resume: rec.resume, tsMs: rec.tsMs, commit: rec.offset, events: open });
          open = [];
          openTxn = null;
        }
      }
      offset = r.next;
    }
    assert.equal(open.length, 0, `the log ends with ${open.length} events of a transaction that has no commit`);
    return { txns, start: log.start, end: log.durableEnd };
  } finally {
    await log.close();
  }
}
