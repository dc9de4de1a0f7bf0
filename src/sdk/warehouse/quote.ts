/**
 * Quoting for SQL text. Prefer parameters for values; these are for what parameters cannot
 * carry (identifiers, DDL, a literal inside a statement that takes none).
 */

/** An identifier, standard SQL (Postgres, DuckDB, SQLite…): in double quotes, `"` doubled. */
export function quoteIdent(s: string): string {
  return '"' + s.replace(/"/g, '""') + '"';
}

/** A string literal, standard SQL: in single quotes, `'` doubled; a backslash is an ordinary character. */
export function quoteLiteral(s: string): string {
  return "'" + s.replace(/'/g, "''") + "'";
}

/**
 * A string literal for dialects that read backslash escapes inside quotes (ClickHouse,
 * SphinxQL, MySQL without NO_BACKSLASH_ESCAPES): `\` and `'` are escaped with a backslash.
 */
export function quoteBackslashLiteral(s: string): string {
  return "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}
