/**
 * The object path of a MySQL/MariaDB snapshot chunk: mysql2 parses each row into an object,
 * the table's converters (snapshot-values.ts) turn its values into the decoder's, and the row
 * is stringified. The reference form, and the path of tables the byte path (snapshot-rows.ts)
 * declines.
 */
import type mysql from 'mysql2';
import type { JsonValue, Row } from '../../src/core/event.js';
import { JsonBytes } from '../../src/core/json-bytes.js';
import { keyString, type RowSink, type SnapshotTable } from '../../src/snapshot/types.js';
import { writeJsonText } from './values.js';
import type { ColumnInfo } from './snapshot-columns.js';
import { objectQuery } from './snapshot-sql.js';
import { ColumnType as F } from './column-types.js';
import { converterFor, type Conv } from './snapshot-values.js';

/** The object path's converters of a result, cached per table by the reader. */
export interface ObjectRowsPlan {
  byName: Map<string, ColumnInfo>;
  /** Set on the first result: a signature of the fields, and the columns that need converting. */
  sig?: string;
  convNames?: string[];
  convs?: Conv[];
}

/**
 * A MariaDB JSON value on the object path: its text as the envelope holds it (what the byte
 * paths write: values.ts `writeJsonText`), never a parsed value, whose numbers a double
 * would round. Only {@link rowJson} reads it.
 */
class JsonText {
  constructor(readonly text: string) {}
}

function jsonText(v: Buffer): JsonValue {
  const b = Buffer.isBuffer(v) ? v : Buffer.from(v as unknown as string, 'utf8');
  const w = new JsonBytes(b.length + 2);
  writeJsonText(w, b, 0, b.length);
  return new JsonText(w.toString()) as unknown as JsonValue;
}

/** Set by {@link rowJson}: false when its text is not JSON.stringify's (a JsonText or a -0 in it). */
let rowJsonPlain = true;

/** A row object as JSON: JSON.stringify's, but with {@link JsonText} values copied and a float's -0 signed. */
function rowJson(row: Row): string {
  let s = '';
  rowJsonPlain = true;
  for (const k of Object.keys(row)) {
    const v = row[k] as unknown;
    let t: string;
    if (v instanceof JsonText) t = v.text;
    else if (Object.is(v, -0)) t = '-0';
    else {
      s += `${s ? ',' : '{'}${JSON.stringify(k)}:${JSON.stringify(v)}`;
      continue;
    }
    rowJsonPlain = false;
    s += `${s ? ',' : '{'}${JSON.stringify(k)}:${t}`;
  }
  return s ? `${s}}` : '{}';
}

/**
 * A chunk through mysql2's row objects: the result's converters applied in place, then each
 * row stringified. The reference form, and the path of tables the byte path declines.
 */
export async function objectRows(c: mysql.Connection, sql: string, table: SnapshotTable, plan: ObjectRowsPlan, out: RowSink): Promise<void> {
  const r = await objectQuery(c, sql);
  const fields = r.fields;
  const sigNow = fields.map((f) => `${f.name}:${f.columnType}:${f.characterSet}`).join('\u0000');
  if (plan.sig !== sigNow) {
    plan.convNames = [];
    plan.convs = [];
    for (const f of fields) {
      const info = plan.byName.get(f.name);
      // MariaDB JSON, but for a key column (its key string must be what keyString makes of
      // a streamed, parsed row): kept as text.
      const conv = info?.json && f.columnType !== F.JSON && !table.key.includes(f.name) ? jsonText : converterFor(f, info);
      if (conv) {
        plan.convNames.push(f.name);
        plan.convs.push(conv);
      }
    }
    plan.sig = sigNow;
  }
  const convNames = plan.convNames!;
  const convs = plan.convs!;
  const rows = r.rows as unknown as Row[];
  const m = convs.length;
  if (m) {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      for (let j = 0; j < m; j++) {
        const k = convNames[j]!;
        const v = row[k];
        if (v !== null && v !== undefined) row[k] = convs[j]!(v as unknown as Buffer);
      }
    }
  }
  for (let i = 0; i < rows.length; i++) {
    const json = rowJson(rows[i]!);
    // A key-less row is its own key: what keyString makes of the same row streamed (parsed).
    out.strings(json, table.key.length ? keyString(table, rows[i]!)! : rowJsonPlain ? json : JSON.stringify(JSON.parse(json)));
  }
}
