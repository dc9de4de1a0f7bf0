import { ErrorCodes, TributaryError } from '../core/errors.js';

/** Which comment syntax the database reads: MySQL also starts a comment with `#`. */
export type FilterDialect = 'postgres' | 'mysql';

const unsafe = (what: string) =>
  new TributaryError(ErrorCodes.SNAPSHOT_FILTER_UNSAFE, `the snapshot filter (--where) ${what}`, {
    fix: 'write one boolean SQL condition on the table\'s columns, e.g. `id > 1000 AND status = \'paid\'`: no ";", "--" or "/*" (nor "#" on MySQL), even inside quotes, and balanced parentheses',
  });

/**
 * Reject a `--where` filter that could be more than one condition. The filter is pasted
 * into `WHERE (...)` of the snapshot's statements, so:
 *
 * - `;` could end the statement and start another (and `COMMIT` the READ ONLY transaction
 *   first), and `--`, `/*` (and MySQL's `#`) could comment out the rest of it. They are
 *   refused anywhere, even inside a string literal: the rule is simple to state and to check.
 * - An unbalanced `)` could close the `WHERE (` and append to the statement (a `UNION` with
 *   another table). Parentheses are counted outside string literals and quoted identifiers.
 *
 * The statements run one at a time over the extended protocol (Postgres) or with
 * multi-statements off (MySQL), inside READ ONLY transactions: this check is the first of
 * those fences, not the only one.
 */
export function assertSafeFilter(where: string, dialect: FilterDialect): void {
  if (!where.trim()) throw unsafe('is empty');
  if (where.includes(';')) throw unsafe('contains ";", which could start a second statement');
  if (where.includes('--') || where.includes('/*')) throw unsafe('contains a comment ("--" or "/*")');
  if (dialect === 'mysql' && where.includes('#')) throw unsafe('contains "#", a comment on MySQL');
  if (where.includes('\u0000')) throw unsafe('contains a NUL character');
  let depth = 0;
  for (let i = 0; i < where.length; i++) {
    const ch = where[i]!;
    if (ch === "'" || ch === '"' || (ch === '`' && dialect === 'mysql')) {
      // Skip the literal: a doubled quote stays inside; MySQL (and Postgres E'') also escape with a backslash.
      const backslash = dialect === 'mysql' || (ch === "'" && /(^|[^A-Za-z0-9_$])[eE]$/.test(where.slice(0, i)));
      let j = i + 1;
      for (; j < where.length; j++) {
        if (backslash && where[j] === '\\') j++;
        else if (where[j] === ch) {
          if (where[j + 1] === ch) j++;
          else break;
        }
      }
      if (j >= where.length) throw unsafe(`has an unterminated ${ch} quote`);
      i = j;
    } else if (ch === '$' && dialect === 'postgres') {
      // A dollar-quoted string: $tag$ ... $tag$ (a $1 parameter has a digit, not a tag).
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(where.slice(i));
      if (m) {
        const end = where.indexOf(m[0], i + m[0].length);
        if (end < 0) throw unsafe('has an unterminated dollar quote');
        i = end + m[0].length - 1;
      }
    } else if (ch === '(') depth++;
    else if (ch === ')' && --depth < 0) throw unsafe('closes a parenthesis it did not open');
  }
  if (depth !== 0) throw unsafe('leaves a parenthesis open');
}

/** The error for a filter the database refuses (EXPLAIN failed): its message, verbatim. */
export function filterRejected(table: string, err: unknown): TributaryError {
  return new TributaryError(ErrorCodes.SNAPSHOT_FILTER_REJECTED, `the database rejects the snapshot filter (--where) on ${table}: ${(err as Error).message ?? String(err)}`, {
    fix: 'correct the condition (columns of that table, SQL of its database); nothing was started',
    cause: err,
  });
}
