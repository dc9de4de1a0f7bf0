import type { DecodedEvent } from './format.js';
import { TimeTravel } from './time-travel.js';
import { committedEnd, type LogView } from './view.js';
import { ConfigError, ErrorCodes } from '../core/errors.js';

/** Which retained events `tributary log read` (and `GET /log/read`) prints. */
export interface EventFilter {
  /** Offsets [from, to): `to` is clamped to the end of the committed history. */
  from: number;
  to: number;
  /** Only this table (as events name it: `schema.table`, `db.table`). */
  table?: string;
  /** Only events of this key (JSON, as events show it; columns in any order). */
  key?: string;
}

/** Records read per step of a scan: bounds memory whatever the range. */
const STEP_RECORDS = 4096;
const STEP_BYTES = 4 << 20;

/**
 * The retained events in a range, as stored (their envelopes' bytes are
 * `buf[envStart, envEnd)`), in log order, in bounded memory. Only committed transactions:
 * the events of one still being appended are not history yet.
 *
 * With a table and a key the key index answers (the key's versions, not a scan of the log);
 * otherwise the range is read in steps of a few MiB and filtered.
 */
export async function* readEvents(view: LogView, f: EventFilter): AsyncGenerator<DecodedEvent> {
  const log = view.log;
  const to = Math.min(f.to, committedEnd(log));
  const from = Math.max(f.from, log.start);
  if (from >= to) return;
  if (f.table !== undefined && f.key !== undefined) {
    yield* new TimeTravel(log, view.compacted).keyHistory(f.table, Buffer.from(f.key), from, to);
    return;
  }
  const key = f.key === undefined ? null : canonical(parseKey(f.key));
  let at = from;
  while (at < to) {
    const r = await log.read(at, Math.min(STEP_RECORDS, to - at), STEP_BYTES);
    if (!r.records.length) break;
    for (const rec of r.records) {
      if (rec.offset >= to) return;
      if (rec.kind !== 'event') continue;
      if (f.table !== undefined && rec.table !== f.table) continue;
      if (key !== null && !keyMatches(rec, key)) continue;
      yield rec;
    }
    at = r.next;
  }
}

function parseKey(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* below */
  }
  throw new ConfigError(ErrorCodes.USAGE, `--key is not a JSON object: ${text}`, { fix: 'give the key as events show it, e.g. --key \'{"id":7}\'' });
}

/** A key object as comparable text: its columns sorted by name. */
function canonical(k: Record<string, unknown>): string {
  return JSON.stringify(Object.keys(k).sort().map((c) => [c, k[c]]));
}

function keyMatches(rec: DecodedEvent, want: string): boolean {
  if (rec.keyEnd - rec.keyStart < 2) return false;
  const text = rec.buf.toString('utf8', rec.keyStart, rec.keyEnd);
  if (text === 'null') return false;
  return canonical(JSON.parse(text) as Record<string, unknown>) === want;
}
