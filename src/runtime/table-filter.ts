/**
 * Compile include/exclude table lists (`public.orders`, `public.order_*`, `*.*`) into one
 * predicate, memoized per table name: the hot path does a Map lookup, not pattern matching.
 */
export function tableMatcher(include: readonly string[] | undefined, exclude: readonly string[] | undefined): (table: string) => boolean {
  const inc = include?.length ? include.map(globToRegExp) : null;
  const exc = exclude?.length ? exclude.map(globToRegExp) : null;
  if (!inc && !exc) return matchAll;
  const memo = new Map<string, boolean>();
  return (table) => {
    let hit = memo.get(table);
    if (hit === undefined) {
      hit = (!inc || inc.some((r) => r.test(table))) && !(exc && exc.some((r) => r.test(table)));
      memo.set(table, hit);
    }
    return hit;
  };
}

/** `public.order_*` → /^public\.order_.*$/ ; a pattern without a dot matches any schema. */
export function globToRegExp(glob: string): RegExp {
  const g = glob.replace(/"/g, '');
  const body = g.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(g.includes('.') ? `^${body}$` : `^[^.]+\\.${body}$`);
}

/** The predicate of an empty filter; callers may compare against it to skip the call. */
export const matchAll = (_table: string): boolean => true;

/** `table` as the source names it: Postgres qualifies a bare name with `public`. */
export function qualified(table: string, sourceType: string): string {
  return table.includes('.') || sourceType !== 'postgres' ? table : `public.${table}`;
}
