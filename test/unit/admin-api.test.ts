import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bearerMatches } from '../../src/http/auth.js';
import { assertSafeFilter } from '../../src/snapshot/filter.js';

describe('snapshot filter text (assertSafeFilter)', () => {
  it('refuses separators, comments and parentheses that escape WHERE (...)', () => {
    const bad: [string, 'postgres' | 'mysql'][] = [
      ['1=1); drop table t; --', 'postgres'],
      ['1=1; commit; drop table t', 'postgres'],
      ['1=1; commit; drop table t', 'mysql'],
      ["note = ';'", 'postgres'], // anywhere, even quoted: the simple rule
      ['id = 1 -- x', 'postgres'],
      ['id = 1 /* x */', 'mysql'],
      ['id = 1 # x', 'mysql'],
      ['1=1) UNION SELECT * FROM secrets WHERE (1=1', 'postgres'],
      ['(id = 1', 'postgres'],
      ["note = 'unterminated", 'postgres'],
      ["note = 'it\\' OR (1=1", 'mysql'],
      ['  ', 'postgres'],
    ];
    for (const [where, dialect] of bad) assert.throws(() => assertSafeFilter(where, dialect), /TRB6003|snapshot filter/, `${dialect}: ${where}`);
  });

  it('accepts ordinary conditions, with parentheses inside literals and Postgres jsonb operators', () => {
    const good: [string, 'postgres' | 'mysql'][] = [
      ['id <= 250 AND id % 2 = 0', 'postgres'],
      ["note = 'it''s (x' AND (a OR b)", 'postgres'],
      ["data #>> '{a,b}' = 'x'", 'postgres'],
      ['body = $$a)b$$ OR body = $q$(c$q$', 'postgres'],
      ["note = E'x\\'(' ", 'postgres'],
      ["note = 'x\\'(' AND `weird)col` = 1", 'mysql'],
      ['id IN (SELECT id FROM other WHERE flag)', 'mysql'],
    ];
    for (const [where, dialect] of good) assert.doesNotThrow(() => assertSafeFilter(where, dialect), `${dialect}: ${where}`);
  });
});

describe('admin token comparison (bearerMatches)', () => {
  it('matches only `Bearer <token>` exactly', () => {
    const t = 'admin-token-0123456789abcdef';
    assert.ok(bearerMatches(`Bearer ${t}`, t));
    assert.ok(bearerMatches(`bearer ${t}`, t), 'the scheme is case-insensitive');
    for (const h of [undefined, '', t, `Bearer ${t}x`, `Bearer ${t.slice(1)}`, `Basic ${t}`, 'Bearer ', `Bearer ${t} extra`]) assert.equal(bearerMatches(h, t), false, String(h));
  });
});
