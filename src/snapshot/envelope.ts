import { SerializedChangeEvent, type ChangeEvent, type Row, type SourceInfo } from '../core/event.js';
import { JsonBytes } from '../core/json-bytes.js';
import { keyWritten, putKey } from '../core/envelope-bytes.js';
import { snapshotKey, type ByteRows, type ChunkSerializer, type SnapshotEventBuilder, type SnapshotFlag, type SnapshotTable, type WatermarkAt } from './types.js';

/** The `source` block of a snapshot row: all a source has to say about its envelopes. */
export type SnapshotSourceBlock = (table: SnapshotTable, snapshot: SnapshotFlag, at: WatermarkAt, now: number) => SourceInfo;

/** Everything of a snapshot envelope before the row: `op`, `before` and the `after` key. */
const HEAD = '{"op":"r","before":null,"after":';
const HEAD_BYTES = Buffer.from(HEAD);

/**
 * The `key` JSON of a row from its key string ({@link keyString}): each part is already the
 * JSON of one key value, so only the column names go around them.
 */
function keyJsonOf(table: SnapshotTable): (key: string) => string {
  const names = table.key.map((k) => JSON.stringify(k));
  if (!names.length) return () => 'null';
  if (names.length === 1) {
    const open = `{${names[0]}:`;
    return (key) => `${open}${key.slice(0, -1)}}`;
  }
  return (key) => {
    const parts = key.split('\u0000');
    let s = '{';
    for (let i = 0; i < names.length; i++) s += `${i ? ',' : ''}${names[i]}:${parts[i]}`;
    return `${s}}`;
  };
}

/**
 * A {@link SnapshotEventBuilder} from a source's `source` block. Both forms take the block
 * from the same function, so they cannot drift apart: the object form puts it into an
 * envelope object; the chunk serializer stringifies it once per chunk and flag and joins
 * `HEAD + row + key + tail`, the key order of the object form (`op`, `before`, `after`,
 * `key`, `source`, `ts_ms`).
 */
export function snapshotEventBuilder(source: SnapshotSourceBlock): SnapshotEventBuilder {
  const build = (table: SnapshotTable, row: Row, snapshot: SnapshotFlag, at: WatermarkAt, now = Date.now()): ChangeEvent => ({
    op: 'r',
    before: null,
    after: row,
    key: snapshotKey(table, row),
    source: source(table, snapshot, at, now),
    ts_ms: now,
  });
  const chunk = (table: SnapshotTable, at: WatermarkAt, now: number): ChunkSerializer => {
    const keyJson = keyJsonOf(table);
    const tails = new Map<SnapshotFlag, string>();
    const tail = (flag: SnapshotFlag): string => {
      let t = tails.get(flag);
      if (t === undefined) tails.set(flag, (t = `,"source":${JSON.stringify(source(table, flag, at, now))},"ts_ms":${now}}`));
      return t;
    };
    const tailBytes = new Map<SnapshotFlag, Buffer>();
    const serialize = (row: string, key: string, flag: SnapshotFlag) => new SerializedChangeEvent(`${HEAD}${row},"key":${keyJson(key)}${tail(flag)}`, table.name, now);
    // The same pieces, written as bytes into the arena: the event keeps them (no string).
    const bytes = (rows: ByteRows, i: number, flag: SnapshotFlag) => {
      let tb = tailBytes.get(flag);
      if (!tb) tailBytes.set(flag, (tb = Buffer.from(tail(flag), 'utf8')));
      const w = env;
      w.reset();
      w.raw(HEAD_BYTES, 0, HEAD_BYTES.length);
      w.raw(rows.slabs[i]!, rows.starts[i]!, rows.ends[i]!);
      putKey(w);
      w.text(keyJson(rows.keys[i]!));
      keyWritten(w);
      w.raw(tb, 0, tb.length);
      const ev = SerializedChangeEvent.fromWriter(w, table.name, now);
      w.seal();
      return ev;
    };
    return Object.assign(serialize, { bytes });
  };
  // One arena per source for the envelopes of every chunk (json-bytes.ts).
  const env = new JsonBytes(256 * 1024, true);
  return Object.assign(build, { chunk });
}
