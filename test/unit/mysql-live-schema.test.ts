import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeBinlogFile, MysqlPosition } from '../../connectors/mysql/index.js';
import { SchemaHistory } from '../../connectors/mysql/schema-history.js';
import { TributaryError } from '../../src/core/errors.js';
import { vectorsDir } from '../helpers/env.js';

const VECTORS = vectorsDir();
const MINIMAL = `${VECTORS}/minimal_row_metadata.000001`;

let n = 100;
function ddl(h: SchemaHistory, sql: string, db = 'shop'): MysqlPosition {
  const pos = new MysqlPosition('bin.000001', n);
  const resume = new MysqlPosition('bin.000001', (n += 100));
  h.apply({ db, sql, ts_ms: 0, pos, resume, gtid: null });
  return resume;
}

function cols(h: SchemaHistory, db: string, t: string): string[] {
  const d = h.current(db, t);
  assert.ok(d && !('unknown' in d), `${db}.${t} known: ${JSON.stringify(d)}`);
  return d.columns.map((c) => `${c.name}:${c.type}${c.unsigned ? '+' : ''}${c.json ? ':json' : ''}`);
}

describe('mysql schema history: DDL', () => {
  it('follows CREATE, ALTER ADD/DROP/CHANGE/MODIFY/RENAME COLUMN, RENAME and DROP TABLE', () => {
    const h = new SchemaHistory();
    ddl(h, 'CREATE TABLE `orders` (`id` bigint unsigned NOT NULL AUTO_INCREMENT, status enum(\'a\',\'b,c\') DEFAULT \'a\', note varchar(20) CHARACTER SET latin1, PRIMARY KEY (`id`)) ENGINE=InnoDB');
    assert.deepEqual(cols(h, 'shop', 'orders'), ['id:bigint+', 'status:enum', 'note:varchar']);
    const d = h.current('shop', 'orders') as { columns: { labels?: string[]; collation: number | null }[]; primaryKey: string[] };
    assert.deepEqual(d.columns[1]!.labels, ['a', 'b,c']);
    assert.deepEqual(d.primaryKey, ['id']);
    ddl(h, 'ALTER TABLE orders ADD COLUMN doc json AFTER id, ADD INDEX (status)');
    assert.deepEqual(cols(h, 'shop', 'orders'), ['id:bigint+', 'doc:json:json', 'status:enum', 'note:varchar']);
    ddl(h, 'ALTER TABLE shop.orders DROP COLUMN note, ADD COLUMN (a int, b text)');
    assert.deepEqual(cols(h, 'shop', 'orders'), ['id:bigint+', 'doc:json:json', 'status:enum', 'a:int', 'b:text']);
    ddl(h, 'ALTER TABLE orders CHANGE COLUMN a amount decimal(10,2) FIRST');
    assert.deepEqual(cols(h, 'shop', 'orders'), ['amount:decimal', 'id:bigint+', 'doc:json:json', 'status:enum', 'b:text']);
    ddl(h, 'ALTER TABLE orders MODIFY b longtext CHECK (json_valid(b)), RENAME COLUMN status TO state');
    assert.deepEqual(cols(h, 'shop', 'orders'), ['amount:decimal', 'id:bigint+', 'doc:json:json', 'state:enum', 'b:longtext:json']);
    ddl(h, 'RENAME TABLE orders TO archive.orders_old');
    assert.equal(h.current('shop', 'orders'), null);
    assert.deepEqual(cols(h, 'archive', 'orders_old'), ['amount:decimal', 'id:bigint+', 'doc:json:json', 'state:enum', 'b:longtext:json']);
    ddl(h, 'CREATE TABLE IF NOT EXISTS copy LIKE archive.orders_old');
    assert.equal(cols(h, 'shop', 'copy').length, 5);
    ddl(h, 'DROP TABLE IF EXISTS copy, archive.orders_old');
    assert.equal(h.current('shop', 'copy'), null);
    ddl(h, '/* comment */ CREATE TABLE sel AS SELECT 1 AS x');
    assert.ok('unknown' in (h.current('shop', 'sel') as object), 'CREATE ... SELECT cannot be known');
  });

  it('stores versions; a restart from an earlier position drops later versions', () => {
    const h = new SchemaHistory();
    const p1 = ddl(h, 'CREATE TABLE t (a int)');
    const p2 = ddl(h, 'ALTER TABLE t ADD COLUMN b int');
    const doc = JSON.parse(JSON.stringify(h.toStored()));
    const atP1 = SchemaHistory.fromStored(doc, p1);
    assert.deepEqual(cols(atP1, 'shop', 't'), ['a:int']);
    const atP2 = SchemaHistory.fromStored(doc, p2);
    assert.deepEqual(cols(atP2, 'shop', 't'), ['a:int', 'b:int']);
    atP2.prune(p2);
    assert.equal(atP2.toStored().tables['shop.t']!.length, 1, 'versions no position can need are pruned');
  });
});

describe('mysql schema history: decoding a MINIMAL-metadata binlog', () => {
  async function decode(h: SchemaHistory) {
    const out = [];
    for await (const it of decodeBinlogFile(MINIMAL, { schemaFor: (db, t, map) => h.hintFor(db, t, map) })) if (it.kind === 'event') out.push(it.event);
    return out;
  }

  it('names columns from the history and takes the key from it', async () => {
    const h = new SchemaHistory();
    ddl(h, 'CREATE TABLE t1 (id int PRIMARY KEY, b blob, c char(10), d int, e int unsigned)', 'noria');
    const [ev] = await decode(h);
    assert.deepEqual(ev!.after, { id: 1, c: 'a', e: 3230202323 });
    assert.deepEqual(ev!.key, { id: 1 });
  });

  it('a renamed column is decoded under its new name', async () => {
    const h = new SchemaHistory();
    ddl(h, 'CREATE TABLE t1 (id int PRIMARY KEY, b blob, c char(10), d int, e int unsigned)', 'noria');
    ddl(h, 'ALTER TABLE t1 RENAME COLUMN c TO label', 'noria');
    const [ev] = await decode(h);
    assert.deepEqual(ev!.after, { id: 1, label: 'a', e: 3230202323 });
  });

  it('stops with MYSQL_SCHEMA_UNKNOWN rather than guess: unknown table, wrong types, unparsable DDL', async () => {
    for (const setup of [
      (h: SchemaHistory) => ddl(h, 'CREATE TABLE other (id int)', 'noria'),
      (h: SchemaHistory) => ddl(h, 'CREATE TABLE t1 (id int PRIMARY KEY, b blob, c char(10), d int)', 'noria'),
      (h: SchemaHistory) => ddl(h, 'CREATE TABLE t1 (id varchar(3) PRIMARY KEY, b blob, c char(10), d int, e int unsigned)', 'noria'),
      (h: SchemaHistory) => (ddl(h, 'CREATE TABLE t1 (id int PRIMARY KEY, b blob, c char(10), d int, e int unsigned)', 'noria'), ddl(h, 'ALTER TABLE t1 CHANGE COLUMN nosuch x int', 'noria')),
    ]) {
      const h = new SchemaHistory();
      setup(h);
      await assert.rejects(decode(h), (err: unknown) => err instanceof TributaryError && err.code === 'TRB2104' && /binlog_row_metadata/.test(err.fix ?? ''));
    }
  });
});
