/**
 * Schema history: the table definitions in force at each binlog position.
 *
 * Why: a TABLE_MAP carries column types, but names, primary keys, ENUM/SET labels and
 * (on MariaDB, where JSON is LONGTEXT) JSON-ness only with binlog_row_metadata=FULL, or not
 * at all. So we snapshot the definitions from information_schema at the start position,
 * persist them in the state store, and apply every DDL statement seen in the stream at its
 * position. Each TABLE_MAP is then decoded with the schema in force where it appears.
 *
 * - With FULL metadata the binlog names the columns; the history only adds hints (JSON
 *   columns, primary key) matched by column name, so an approximate history cannot mislabel
 *   a value.
 * - With MINIMAL/NO_LOG metadata the history is the only source of names. It must be exact:
 *   every column's type is checked against the TABLE_MAP, and a table whose definition is
 *   unknown (an unparsable DDL, a table created before the history started) stops the
 *   pipeline with MYSQL_SCHEMA_UNKNOWN. We never guess names.
 *
 * Storage (`ctx.store.put(pipeline, 'mysql-schema', doc)`): per table, a list of versions
 * `{at, def}` where `at` is the serialized position from which `def` is in force (null def:
 * dropped; `unknown`: cannot be known). On restart from position R, versions after R are
 * dropped (their DDL is received again) and the latest version at or before R is in force.
 */
import type mysql from 'mysql2';
import { ErrorCodes, TributaryError } from '../../src/core/errors.js';
import { mysqlQuery } from './client.js';
import { ColumnType as T } from './column-types.js';
import type { DdlStatement } from './decoder.js';
import { MysqlPosition } from './position.js';
import type { TableSchemaHint } from './row-decoder.js';
import type { TableMap } from './table-map.js';

/** One column as the history knows it. */
export interface ColumnDef {
  name: string;
  /** Base type, lowercase: `int`, `varchar`, `json`, `enum`... */
  type: string;
  unsigned: boolean;
  /** Declared JSON (MySQL JSON, or MariaDB JSON = LONGTEXT CHECK json_valid). */
  json: boolean;
  /** Collation id for character columns (null otherwise, or when not known). */
  collation: number | null;
  /** ENUM/SET labels. */
  labels?: string[];
}

export interface TableDef {
  columns: ColumnDef[];
  primaryKey: string[];
}

/** A version of one table: `def` is in force from position `at` on. */
interface Version {
  at: string;
  def: TableDef | null | { unknown: string };
}

interface StoredHistory {
  v: 1;
  tables: Record<string, Version[]>;
}

const SYSTEM_DBS = "('mysql','information_schema','performance_schema','sys')";

/** Binlog wire types a declared type may show up as (null: not checked). */
const WIRE: Record<string, number[]> = {
  tinyint: [T.TINY], bool: [T.TINY], boolean: [T.TINY], smallint: [T.SHORT], mediumint: [T.INT24], int: [T.LONG], integer: [T.LONG],
  bigint: [T.LONGLONG], float: [T.FLOAT], double: [T.DOUBLE], real: [T.DOUBLE], decimal: [T.NEWDECIMAL, T.DECIMAL], numeric: [T.NEWDECIMAL, T.DECIMAL],
  date: [T.DATE, T.NEWDATE], datetime: [T.DATETIME2, T.DATETIME], timestamp: [T.TIMESTAMP2, T.TIMESTAMP], time: [T.TIME2, T.TIME], year: [T.YEAR],
  char: [T.STRING], binary: [T.STRING], varchar: [T.VARCHAR, T.VAR_STRING], varbinary: [T.VARCHAR, T.VAR_STRING],
  tinytext: [T.BLOB], text: [T.BLOB], mediumtext: [T.BLOB], longtext: [T.BLOB], tinyblob: [T.BLOB], blob: [T.BLOB], mediumblob: [T.BLOB], longblob: [T.BLOB],
  enum: [T.STRING, T.ENUM], set: [T.STRING, T.SET], bit: [T.BIT], json: [T.JSON, T.BLOB],
  geometry: [T.GEOMETRY], point: [T.GEOMETRY], linestring: [T.GEOMETRY], polygon: [T.GEOMETRY], multipoint: [T.GEOMETRY],
  multilinestring: [T.GEOMETRY], multipolygon: [T.GEOMETRY], geometrycollection: [T.GEOMETRY],
};

function tableKey(db: string, table: string): string {
  return `${db}.${table}`;
}

/** The in-memory schema history of one source. */
export class SchemaHistory {
  private readonly tables = new Map<string, Version[]>();
  /** Collation name → id, and charset name → its default collation id (from the server). */
  private collations = new Map<string, number>();
  private charsetDefaults = new Map<string, number>();
  private serverCharset = 45;
  /** Changes made so far (DDL applied, tables snapshotted), and how many of them the store holds. */
  private revision = 0;
  private durableRevision = 0;

  /**
   * True while the store lacks a change: commits after a DDL must wait until it is written.
   * Cleared only by {@link markDurable} after a write that succeeded, so a failed write leaves
   * the history dirty and it is written again.
   */
  get dirty(): boolean {
    return this.revision !== this.durableRevision;
  }

  /** The current revision, to hand to {@link markDurable} once the document taken with it is stored. */
  get currentRevision(): number {
    return this.revision;
  }

  /** A document taken at `revision` is stored; changes made while it was written stay dirty. */
  markDurable(revision: number): void {
    if (revision > this.durableRevision) this.durableRevision = revision;
  }

  /** True when the history holds anything (a snapshot was taken or loaded). */
  get size(): number {
    return this.tables.size;
  }

  /** The definition in force now (after everything applied so far). */
  current(db: string, table: string): Version['def'] | undefined {
    const vs = this.tables.get(tableKey(db, table));
    return vs ? vs[vs.length - 1]!.def : undefined;
  }

  /** Loads the stored history and drops versions after `start` (they will be replayed). */
  static fromStored(doc: StoredHistory | undefined, start: MysqlPosition): SchemaHistory {
    const h = new SchemaHistory();
    if (!doc || doc.v !== 1) return h;
    for (const [k, versions] of Object.entries(doc.tables)) {
      const kept = versions.filter((v) => MysqlPosition.parse(v.at).compare(start) <= 0);
      if (kept.length) h.tables.set(k, kept);
    }
    return h;
  }

  toStored(): StoredHistory {
    return { v: 1, tables: Object.fromEntries(this.tables) };
  }

  /** Drops versions that no position at or after `acked` can need. */
  prune(acked: MysqlPosition): void {
    for (const [k, vs] of this.tables) {
      let keepFrom = 0;
      for (let i = 0; i < vs.length; i++) if (MysqlPosition.parse(vs[i]!.at).compare(acked) <= 0) keepFrom = i;
      if (keepFrom > 0) this.tables.set(k, vs.slice(keepFrom));
      const last = vs[vs.length - 1]!;
      if (last.def === null && MysqlPosition.parse(last.at).compare(acked) <= 0) this.tables.delete(k);
    }
  }

  /** Reads collation ids, so DDL-declared charsets map to the ids the decoder understands. */
  async loadCollations(c: mysql.Connection): Promise<void> {
    const rows = await mysqlQuery<{ n: string; cs: string; id: number; d: string }>(
      c, 'SELECT COLLATION_NAME AS n, CHARACTER_SET_NAME AS cs, ID AS id, IS_DEFAULT AS d FROM information_schema.COLLATIONS',
    );
    for (const r of rows) {
      this.collations.set(r.n.toLowerCase(), Number(r.id));
      if (String(r.d).toLowerCase() === 'yes') this.charsetDefaults.set(r.cs.toLowerCase(), Number(r.id));
    }
    const [s] = await mysqlQuery<{ c: string }>(c, 'SELECT @@collation_server AS c');
    this.serverCharset = this.collations.get(String(s?.c ?? '').toLowerCase()) ?? 45;
  }

  /**
   * Snapshots every base table's definition (outside the system databases) as in force at
   * `at`. Tables the history already knows keep their versions.
   */
  async snapshot(c: mysql.Connection, at: MysqlPosition): Promise<void> {
    if (!this.collations.size) await this.loadCollations(c);
    const cols = await mysqlQuery<{ db: string; t: string; n: string; dt: string; ct: string; coll: string | null }>(
      c,
      `SELECT c.TABLE_SCHEMA AS db, c.TABLE_NAME AS t, c.COLUMN_NAME AS n, c.DATA_TYPE AS dt, c.COLUMN_TYPE AS ct, c.COLLATION_NAME AS coll
         FROM information_schema.COLUMNS c JOIN information_schema.TABLES tb ON tb.TABLE_SCHEMA = c.TABLE_SCHEMA AND tb.TABLE_NAME = c.TABLE_NAME
        WHERE tb.TABLE_TYPE = 'BASE TABLE' AND c.TABLE_SCHEMA NOT IN ${SYSTEM_DBS}
        ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION`,
    );
    const pks = await mysqlQuery<{ db: string; t: string; n: string }>(
      c,
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, COLUMN_NAME AS n FROM information_schema.KEY_COLUMN_USAGE
        WHERE CONSTRAINT_NAME = 'PRIMARY' AND TABLE_SCHEMA NOT IN ${SYSTEM_DBS} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
    );
    // MariaDB JSON is LONGTEXT with a column CHECK (json_valid(`col`)).
    let checks: { db: string; t: string; clause: string }[] = [];
    try {
      checks = await mysqlQuery(c, `SELECT CONSTRAINT_SCHEMA AS db, TABLE_NAME AS t, CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA NOT IN ${SYSTEM_DBS}`);
    } catch {
      /* MySQL 5.7 has no CHECK_CONSTRAINTS */
    }
    const jsonCols = new Set<string>();
    for (const ck of checks) {
      const m = /^\s*json_valid\(\s*`((?:[^`]|``)+)`\s*\)\s*$/i.exec(ck.clause);
      if (m) jsonCols.add(`${ck.db}.${ck.t}.${m[1]!.replace(/``/g, '`')}`);
    }
    const defs = new Map<string, TableDef>();
    for (const r of cols) {
      const k = tableKey(r.db, r.t);
      let d = defs.get(k);
      if (!d) defs.set(k, (d = { columns: [], primaryKey: [] }));
      const ct = String(r.ct).toLowerCase();
      const dt = String(r.dt).toLowerCase();
      d.columns.push({
        name: r.n,
        type: dt,
        unsigned: /\bunsigned\b/.test(ct),
        json: dt === 'json' || jsonCols.has(`${r.db}.${r.t}.${r.n}`),
        collation: r.coll ? this.collations.get(r.coll.toLowerCase()) ?? null : null,
        labels: dt === 'enum' || dt === 'set' ? parseLabels(String(r.ct).slice(String(r.ct).indexOf('('))) : undefined,
      });
    }
    for (const r of pks) defs.get(tableKey(r.db, r.t))?.primaryKey.push(r.n);
    for (const [k, d] of defs) if (!this.tables.has(k)) this.tables.set(k, [{ at: at.serialize(), def: d }]);
    this.revision++;
  }

  /** Refreshes one table from information_schema (only used when its binlog names agree). */
  private set(db: string, table: string, at: MysqlPosition, def: Version['def']): void {
    const k = tableKey(db, table);
    const vs = this.tables.get(k) ?? [];
    const s = at.serialize();
    // The same DDL applied twice at one position (a replay) replaces rather than appends.
    if (vs.length && vs[vs.length - 1]!.at === s) vs[vs.length - 1] = { at: s, def };
    else vs.push({ at: s, def });
    this.tables.set(k, vs);
    this.revision++;
  }

  /**
   * Applies one DDL statement at its position. Statements that do not touch table
   * definitions are ignored; a statement we cannot follow marks the affected table unknown.
   */
  apply(ddl: DdlStatement): void {
    let toks: Tok[];
    try {
      toks = tokenize(ddl.sql);
    } catch {
      return;
    }
    const p = new Parser(toks);
    const at = ddl.resume;
    try {
      if (p.word('CREATE')) {
        p.skipWords('OR', 'REPLACE', 'TEMPORARY');
        if (!p.word('TABLE')) return; // CREATE INDEX/VIEW/DATABASE/...: no column change
        if (toks.some((t) => t.k === 'w' && t.u === 'TEMPORARY')) return;
        p.skipWords('IF', 'NOT', 'EXISTS');
        const [db, t] = p.tableName(ddl.db);
        if (p.word('LIKE') || (p.peek()?.v === '(' && p.peekAt(1)?.u === 'LIKE')) {
          const src = p.peek()?.v === '(' ? (p.next(), p.next(), p.tableName(ddl.db)) : p.tableName(ddl.db);
          const def = this.current(src[0], src[1]);
          this.set(db, t, at, def && !('unknown' in def) ? structuredClone(def) : { unknown: `created LIKE ${src.join('.')}, which the history does not know` });
          return;
        }
        if (!p.punct('(')) {
          this.set(db, t, at, { unknown: 'CREATE TABLE ... SELECT without a column list' });
          return;
        }
        const def: TableDef = { columns: [], primaryKey: [] };
        for (const item of p.list()) this.createItem(def, item);
        // CREATE TABLE ... (cols) SELECT adds columns from the query: cannot follow.
        if (p.rest().some((x) => x.u === 'SELECT')) this.set(db, t, at, { unknown: 'CREATE TABLE ... SELECT' });
        else this.set(db, t, at, def);
        return;
      }
      if (p.word('DROP')) {
        p.skipWords('TEMPORARY');
        if (!p.word('TABLE') && !p.word('TABLES')) return;
        p.skipWords('IF', 'EXISTS');
        do {
          const [db, t] = p.tableName(ddl.db);
          if (this.tables.has(tableKey(db, t))) this.set(db, t, at, null);
        } while (p.punct(','));
        return;
      }
      if (p.word('RENAME')) {
        if (!p.word('TABLE') && !p.word('TABLES')) return;
        do {
          const from = p.tableName(ddl.db);
          p.expectWord('TO');
          const to = p.tableName(ddl.db);
          this.rename(from, to, at);
        } while (p.punct(','));
        return;
      }
      if (p.word('ALTER')) {
        p.skipWords('ONLINE', 'IGNORE');
        if (!p.word('TABLE')) return;
        p.skipWords('IF', 'EXISTS');
        let [db, t] = p.tableName(ddl.db);
        const cur = this.current(db, t);
        if (cur === undefined || cur === null) return; // a table the history never saw
        if ('unknown' in cur) return;
        const def = structuredClone(cur);
        let renamed: [string, string] | null = null;
        for (const spec of p.list(false)) {
          const r = this.alterSpec(def, spec, ddl.db);
          if (r === 'unknown') {
            this.set(db, t, at, { unknown: `cannot follow: ${ddl.sql.slice(0, 200)}` });
            return;
          }
          if (Array.isArray(r)) renamed = r;
        }
        this.set(db, t, at, def);
        if (renamed) {
          this.rename([db, t], renamed, at);
          [db, t] = renamed;
        }
      }
    } catch {
      // A statement we could not parse: if it names a tracked table, that table is unknown.
      const m = /^\s*(?:ALTER|CREATE)\s+(?:ONLINE\s+|IGNORE\s+|OR\s+REPLACE\s+)*TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?((?:`[^`]+`|[\w$]+)(?:\s*\.\s*(?:`[^`]+`|[\w$]+))?)/i.exec(ddl.sql);
      if (m) {
        const parts = m[1]!.split(/\s*\.\s*/).map((s) => (s.startsWith('`') ? s.slice(1, -1) : s));
        const [db, t] = parts.length === 2 ? [parts[0]!, parts[1]!] : [ddl.db, parts[0]!];
        this.set(db, t, at, { unknown: `cannot parse: ${ddl.sql.slice(0, 200)}` });
      }
    }
  }

  private rename(from: [string, string], to: [string, string], at: MysqlPosition): void {
    const def = this.current(from[0], from[1]);
    if (def === undefined) return;
    this.set(to[0], to[1], at, def === null ? null : structuredClone(def));
    this.set(from[0], from[1], at, null);
  }

  private createItem(def: TableDef, item: Tok[]): void {
    const p = new Parser(item);
    const head = p.peek();
    if (!head) return;
    if (head.k === 'w' && ['PRIMARY', 'CONSTRAINT'].includes(head.u!) && item.some((x) => x.u === 'PRIMARY')) {
      while (p.peek() && !(p.peek()!.u === 'KEY')) p.next();
      p.next();
      if (p.peek()?.v !== '(') p.next(); // index name
      def.primaryKey = p.parenNames();
      return;
    }
    if (head.k === 'w' && ['KEY', 'INDEX', 'UNIQUE', 'FULLTEXT', 'SPATIAL', 'FOREIGN', 'CHECK', 'CONSTRAINT', 'PERIOD'].includes(head.u!)) return;
    const col = this.columnDef(p);
    def.columns.push(col.def);
    if (col.primary) def.primaryKey = [col.def.name];
  }

  /** `name type[(args)] [UNSIGNED] [CHARACTER SET x] [COLLATE y] ... [PRIMARY KEY] [CHECK (json_valid(name))]`. */
  private columnDef(p: Parser): { def: ColumnDef; primary: boolean } {
    const name = p.ident();
    const typeTok = p.next();
    if (!typeTok || typeTok.k !== 'w') throw new Error('column type expected');
    let type = typeTok.u!.toLowerCase();
    if (type === 'double' && p.peek()?.u === 'PRECISION') p.next();
    if (type === 'character' || type === 'national') type = 'char';
    if (type === 'long' && p.peek()?.u === 'VARCHAR') (p.next(), (type = 'mediumtext'));
    let labels: string[] | undefined;
    if (p.peek()?.v === '(') {
      const args = p.paren();
      if (type === 'enum' || type === 'set') labels = args.filter((x) => x.k === 's').map((x) => x.v);
    }
    if (type === 'char' && p.peek()?.u === 'VARYING') (p.next(), (type = 'varchar'));
    if (type === 'integer') type = 'int';
    if (type === 'bool' || type === 'boolean') type = 'tinyint';
    if (type === 'real') type = 'double';
    if (type === 'dec' || type === 'numeric' || type === 'fixed') type = 'decimal';
    const rest = p.rest();
    const words = rest.map((x) => x.u ?? '');
    const unsigned = words.includes('UNSIGNED') || words.includes('ZEROFILL');
    let collation: number | null = null;
    const isText = ['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set', 'json'].includes(type);
    const binaryType = ['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob'].includes(type);
    for (let i = 0; i < rest.length; i++) {
      const w = rest[i]!.u;
      if (w === 'COLLATE' && rest[i + 1]) collation = this.collations.get(rest[i + 1]!.v.toLowerCase()) ?? collation;
      if ((w === 'CHARSET' || (w === 'SET' && rest[i - 1]?.u === 'CHARACTER')) && rest[i + 1] && collation === null) {
        collation = this.charsetDefaults.get(rest[i + 1]!.v.toLowerCase()) ?? null;
      }
    }
    if (binaryType) collation = 63;
    else if (isText && collation === null) collation = words.includes('BINARY') && type !== 'json' ? null : this.serverCharset;
    const json = type === 'json' || rest.some((x, i) => x.u === 'JSON_VALID' && rest[i + 2]?.v === name);
    if (type === 'json' && !json) collation = this.collations.get('utf8mb4_bin') ?? 46;
    const primary = words.includes('PRIMARY') && words[words.indexOf('PRIMARY') + 1] === 'KEY';
    return { def: { name, type, unsigned, json, collation, labels }, primary };
  }

  /** One ALTER TABLE clause. Returns 'unknown' when it cannot be followed, or a rename target. */
  private alterSpec(def: TableDef, spec: Tok[], defaultDb: string): 'unknown' | [string, string] | void {
    const p = new Parser(spec);
    const idx = (n: string) => def.columns.findIndex((c) => c.name.toLowerCase() === n.toLowerCase());
    const place = (col: ColumnDef, rest: Tok[]) => {
      const w = rest.map((x) => x.u);
      const f = w.lastIndexOf('FIRST');
      const a = w.lastIndexOf('AFTER');
      if (a >= 0) def.columns.splice(idx(rest[a + 1]!.v) + 1, 0, col);
      else if (f >= 0) def.columns.unshift(col);
      else def.columns.push(col);
    };
    if (p.word('ADD')) {
      if (p.peek()?.u === 'COLUMN') p.next();
      p.skipWords('IF', 'NOT', 'EXISTS');
      const head = p.peek();
      if (!head) return 'unknown';
      if (head.k === 'w' && ['PRIMARY', 'CONSTRAINT'].includes(head.u!) && spec.some((x) => x.u === 'PRIMARY')) {
        while (p.peek() && p.peek()!.u !== 'KEY') p.next();
        p.next();
        if (p.peek()?.v !== '(') p.next();
        def.primaryKey = p.parenNames();
        return;
      }
      if (head.k === 'w' && ['KEY', 'INDEX', 'UNIQUE', 'FULLTEXT', 'SPATIAL', 'FOREIGN', 'CHECK', 'CONSTRAINT', 'PARTITION', 'PERIOD', 'SYSTEM'].includes(head.u!)) return;
      if (head.v === '(') {
        p.next();
        for (const item of p.list()) {
          const c = this.columnDef(new Parser(item));
          if (idx(c.def.name) >= 0) continue; // IF NOT EXISTS on an existing column
          def.columns.push(c.def);
        }
        return;
      }
      const save = p.pos;
      const c = this.columnDef(p);
      if (idx(c.def.name) >= 0) return; // ADD COLUMN IF NOT EXISTS on an existing column
      p.pos = save;
      place(c.def, spec);
      if (c.primary) def.primaryKey = [c.def.name];
      return;
    }
    if (p.word('DROP')) {
      if (p.word('PRIMARY')) {
        def.primaryKey = [];
        return;
      }
      const head = p.peek();
      if (head?.k === 'w' && ['INDEX', 'KEY', 'FOREIGN', 'CHECK', 'CONSTRAINT', 'PARTITION', 'SYSTEM', 'PERIOD'].includes(head.u!)) return;
      if (head?.u === 'COLUMN') p.next();
      p.skipWords('IF', 'EXISTS');
      const name = p.ident();
      const i = idx(name);
      if (i >= 0) def.columns.splice(i, 1);
      def.primaryKey = def.primaryKey.filter((k) => k.toLowerCase() !== name.toLowerCase());
      return;
    }
    if (p.word('CHANGE')) {
      if (p.peek()?.u === 'COLUMN') p.next();
      p.skipWords('IF', 'EXISTS');
      const old = p.ident();
      const c = this.columnDef(p);
      const i = idx(old);
      if (i < 0) return 'unknown';
      const after = spec.some((x) => x.u === 'FIRST' || x.u === 'AFTER');
      if (after) {
        def.columns.splice(i, 1);
        place(c.def, spec);
      } else def.columns[i] = c.def;
      def.primaryKey = def.primaryKey.map((k) => (k.toLowerCase() === old.toLowerCase() ? c.def.name : k));
      return;
    }
    if (p.word('MODIFY')) {
      if (p.peek()?.u === 'COLUMN') p.next();
      p.skipWords('IF', 'EXISTS');
      const c = this.columnDef(p);
      const i = idx(c.def.name);
      if (i < 0) return 'unknown';
      if (spec.some((x) => x.u === 'FIRST' || x.u === 'AFTER')) {
        def.columns.splice(i, 1);
        place(c.def, spec);
      } else def.columns[i] = c.def;
      return;
    }
    if (p.word('RENAME')) {
      if (p.word('COLUMN')) {
        p.skipWords('IF', 'EXISTS');
        const from = p.ident();
        p.expectWord('TO');
        const to = p.ident();
        const i = idx(from);
        if (i < 0) return 'unknown';
        def.columns[i]!.name = to;
        def.primaryKey = def.primaryKey.map((k) => (k.toLowerCase() === from.toLowerCase() ? to : k));
        return;
      }
      if (p.word('INDEX') || p.word('KEY')) return;
      if (!p.word('TO')) p.word('AS');
      return p.tableName(defaultDb);
    }
    if (p.word('CONVERT')) {
      // CONVERT TO CHARACTER SET x [COLLATE y]: every text column changes its collation.
      const w = spec.map((x) => x.u);
      const ci = w.indexOf('COLLATE');
      const si = Math.max(w.indexOf('SET'), w.indexOf('CHARSET'));
      const coll = ci >= 0 ? this.collations.get(spec[ci + 1]!.v.toLowerCase()) : si >= 0 ? this.charsetDefaults.get(spec[si + 1]!.v.toLowerCase()) : undefined;
      if (coll === undefined) return 'unknown';
      for (const c of def.columns) if (c.collation !== null && c.collation !== 63 && !c.json) c.collation = coll;
      return;
    }
    // ENGINE=, ADD INDEX, ALTER COLUMN SET DEFAULT, ORDER BY, FORCE, ALGORITHM=...: no column change.
    return;
  }

  /**
   * The decoder's `schemaFor`: hints for a TABLE_MAP. See the class comment for the FULL
   * (names from the binlog) and MINIMAL (names from the history, verified) cases.
   */
  hintFor(db: string, table: string, map: TableMap): TableSchemaHint | undefined {
    const def = this.current(db, table);
    const names = map.columnNames && map.columnNames.length === map.columnCount ? map.columnNames : null;
    if (names) {
      if (!def || 'unknown' in def) return undefined;
      const byName = new Map(def.columns.map((c) => [c.name.toLowerCase(), c]));
      const cols = names.map((n) => byName.get(n.toLowerCase()));
      const lower = new Set(names.map((n) => n.toLowerCase()));
      return {
        columns: names,
        primaryKey: def.primaryKey.length && def.primaryKey.every((k) => lower.has(k.toLowerCase()))
          ? def.primaryKey.map((k) => names.find((n) => n.toLowerCase() === k.toLowerCase())!)
          : undefined,
        jsonColumns: names.filter((_, i) => cols[i]?.json && map.types[i] === T.BLOB),
        collations: cols.map((c) => c?.collation ?? null),
        unsigned: cols.map((c) => c?.unsigned ?? false),
        enumValues: Object.fromEntries(names.flatMap((n, i) => (cols[i]?.type === 'enum' && cols[i]!.labels ? [[n, cols[i]!.labels!]] : []))),
        setValues: Object.fromEntries(names.flatMap((n, i) => (cols[i]?.type === 'set' && cols[i]!.labels ? [[n, cols[i]!.labels!]] : []))),
      };
    }
    const fix = "SET GLOBAL binlog_row_metadata = 'FULL' so the binlog names its columns; then delete the pipeline state and restart (re-snapshot with source.snapshot: when_needed)";
    if (def === undefined) {
      throw new TributaryError(ErrorCodes.MYSQL_SCHEMA_UNKNOWN, `${db}.${table}: the binlog does not name its columns (binlog_row_metadata is not FULL) and the schema history has no definition of this table`, { fix });
    }
    if (def === null) {
      throw new TributaryError(ErrorCodes.MYSQL_SCHEMA_UNKNOWN, `${db}.${table}: rows for a table the schema history records as dropped`, { fix });
    }
    if ('unknown' in def) {
      throw new TributaryError(ErrorCodes.MYSQL_SCHEMA_UNKNOWN, `${db}.${table}: its definition cannot be known at this position (${def.unknown})`, { fix });
    }
    if (def.columns.length !== map.columnCount) {
      throw new TributaryError(ErrorCodes.MYSQL_SCHEMA_UNKNOWN, `${db}.${table}: the schema history has ${def.columns.length} columns but the binlog TABLE_MAP has ${map.columnCount}`, { fix });
    }
    def.columns.forEach((c, i) => {
      const wire = WIRE[c.type];
      if (wire && !wire.includes(map.types[i]!)) {
        throw new TributaryError(ErrorCodes.MYSQL_SCHEMA_UNKNOWN, `${db}.${table}: column ${i + 1} is ${c.name} ${c.type} in the schema history, but the binlog logs type ${map.types[i]}`, { fix });
      }
    });
    return {
      columns: def.columns.map((c) => c.name),
      primaryKey: def.primaryKey.length ? def.primaryKey : undefined,
      jsonColumns: def.columns.filter((c, i) => c.json && map.types[i] === T.BLOB).map((c) => c.name),
      collations: def.columns.map((c) => c.collation),
      unsigned: def.columns.map((c) => c.unsigned),
      enumValues: Object.fromEntries(def.columns.filter((c) => c.type === 'enum' && c.labels).map((c) => [c.name, c.labels!])),
      setValues: Object.fromEntries(def.columns.filter((c) => c.type === 'set' && c.labels).map((c) => [c.name, c.labels!])),
    };
  }
}

/** `('a','b''c')` → ['a', "b'c"]. */
function parseLabels(s: string): string[] {
  try {
    return tokenize(s).filter((t) => t.k === 's').map((t) => t.v);
  } catch {
    return [];
  }
}

// ---- a small SQL tokenizer and parser, enough for DDL ----

interface Tok {
  /** w: word or identifier, q: quoted identifier, s: string literal, n: number, p: punctuation. */
  k: 'w' | 'q' | 's' | 'n' | 'p';
  v: string;
  /** Upper-case form of a bare word. */
  u?: string;
}

export function tokenize(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql[i]!;
    if (/\s/.test(ch)) { i++; continue; }
    if (ch === '/' && sql[i + 1] === '*') {
      // MariaDB/MySQL executable comments `/*!40101 ... */` hold real SQL: keep their content.
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw new Error('unterminated comment');
      const body = sql.slice(i + 2, end);
      const m = /^[!M]!?(\d{5,6})?/.exec(body);
      if (m) out.push(...tokenize(body.slice(m[0].length)));
      i = end + 2;
      continue;
    }
    if ((ch === '-' && sql[i + 1] === '-' && /\s/.test(sql[i + 2] ?? ' ')) || ch === '#') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (ch === '`' || ch === '"') {
      let v = '';
      let j = i + 1;
      for (;;) {
        if (j >= n) throw new Error('unterminated identifier');
        if (sql[j] === ch) {
          if (sql[j + 1] === ch) { v += ch; j += 2; continue; }
          break;
        }
        v += sql[j++];
      }
      out.push({ k: ch === '`' ? 'q' : 's', v });
      i = j + 1;
      continue;
    }
    if (ch === "'") {
      let v = '';
      let j = i + 1;
      for (;;) {
        if (j >= n) throw new Error('unterminated string');
        const c = sql[j]!;
        if (c === '\\') { v += unescape(sql[j + 1] ?? ''); j += 2; continue; }
        if (c === "'") {
          if (sql[j + 1] === "'") { v += "'"; j += 2; continue; }
          break;
        }
        v += c;
        j++;
      }
      out.push({ k: 's', v });
      i = j + 1;
      continue;
    }
    const w = /^[A-Za-z0-9_$\u0080-\uffff]+/.exec(sql.slice(i, i + 256));
    if (w) {
      const v = w[0];
      out.push(/^\d+$/.test(v) ? { k: 'n', v } : { k: 'w', v, u: v.toUpperCase() });
      i += v.length;
      continue;
    }
    out.push({ k: 'p', v: ch });
    i++;
  }
  return out;
}

function unescape(c: string): string {
  return c === 'n' ? '\n' : c === 't' ? '\t' : c === '0' ? '\0' : c === 'r' ? '\r' : c === 'Z' ? '\x1a' : c;
}

class Parser {
  pos = 0;
  constructor(private readonly t: Tok[]) {}
  peek(): Tok | undefined {
    return this.t[this.pos];
  }
  peekAt(k: number): Tok | undefined {
    return this.t[this.pos + k];
  }
  next(): Tok | undefined {
    return this.t[this.pos++];
  }
  rest(): Tok[] {
    return this.t.slice(this.pos);
  }
  word(w: string): boolean {
    const x = this.peek();
    if (x && x.k === 'w' && x.u === w) {
      this.pos++;
      return true;
    }
    return false;
  }
  skipWords(...ws: string[]): void {
    while (this.peek()?.k === 'w' && ws.includes(this.peek()!.u!)) this.pos++;
  }
  expectWord(w: string): void {
    if (!this.word(w)) throw new Error(`${w} expected`);
  }
  punct(c: string): boolean {
    if (this.peek()?.k === 'p' && this.peek()!.v === c) {
      this.pos++;
      return true;
    }
    return false;
  }
  ident(): string {
    const x = this.next();
    if (!x || (x.k !== 'w' && x.k !== 'q')) throw new Error('identifier expected');
    return x.v;
  }
  tableName(defaultDb: string): [string, string] {
    const a = this.ident();
    if (this.punct('.')) return [a, this.ident()];
    return [defaultDb, a];
  }
  /** The tokens of a balanced `( ... )` at the cursor, without the outer parentheses. */
  paren(): Tok[] {
    if (!this.punct('(')) throw new Error('( expected');
    const start = this.pos;
    let depth = 1;
    while (this.pos < this.t.length) {
      const x = this.t[this.pos++]!;
      if (x.k === 'p' && x.v === '(') depth++;
      else if (x.k === 'p' && x.v === ')' && --depth === 0) return this.t.slice(start, this.pos - 1);
    }
    throw new Error('unbalanced parentheses');
  }
  /** `(a, b(10), c)` → ['a', 'b', 'c']. */
  parenNames(): string[] {
    return splitTop(this.paren()).map((item) => item[0]!.v);
  }
  /**
   * Comma-separated items up to the end (or, with `inParens`, inside the parenthesis
   * already opened by the caller: the closing one ends the list).
   */
  list(inParens = true): Tok[][] {
    const items: Tok[][] = [];
    let cur: Tok[] = [];
    let depth = 0;
    while (this.pos < this.t.length) {
      const x = this.t[this.pos++]!;
      if (x.k === 'p' && x.v === '(') depth++;
      else if (x.k === 'p' && x.v === ')') {
        if (depth === 0 && inParens) break;
        depth--;
      } else if (x.k === 'p' && x.v === ',' && depth === 0) {
        items.push(cur);
        cur = [];
        continue;
      }
      cur.push(x);
    }
    if (cur.length) items.push(cur);
    return items;
  }
}

function splitTop(toks: Tok[]): Tok[][] {
  return new Parser(toks).list(false);
}
