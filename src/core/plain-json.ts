/**
 * Whether a value survives `JSON.stringify` and `JSON.parse` unchanged: the state stores
 * keep a sink's checkpoint state as JSON, so anything else comes back different after a
 * restart (a Map as `{}`, a Date as a string, an undefined field gone) or cannot be stored
 * at all (a BigInt throws). Returns what is wrong, naming the path, or null when it is fine.
 */
export function plainJsonProblem(value: unknown, path = 'state'): string | null {
  return walk(value, path, new Set());
}

function walk(v: unknown, path: string, seen: Set<object>): string | null {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(v) ? null : `${path} is ${v} (JSON stores it as null)`;
    case 'bigint':
      return `${path} is a BigInt (${v}n), which JSON cannot store: use a decimal string`;
    case 'undefined':
      return `${path} is undefined (JSON drops it): leave the field out, or use null`;
    case 'function':
    case 'symbol':
      return `${path} is a ${typeof v}, which JSON cannot store`;
  }
  if (v === null) return null;
  const o = v as object;
  if (seen.has(o)) return `${path} refers back to itself (a cycle)`;
  if (Array.isArray(o)) {
    seen.add(o);
    for (let i = 0; i < o.length; i++) {
      const p = walk(o[i], `${path}[${i}]`, seen);
      if (p) return p;
    }
    seen.delete(o);
    return null;
  }
  const proto = Object.getPrototypeOf(o);
  if (proto !== Object.prototype && proto !== null) {
    const kind = o instanceof Map ? 'a Map (JSON stores it as {})' : o instanceof Set ? 'a Set (JSON stores it as {})' : o instanceof Date ? 'a Date (JSON stores it as a string)' : `an instance of ${proto?.constructor?.name ?? 'a class'} (JSON keeps only its own fields)`;
    return `${path} is ${kind}: use plain objects and arrays`;
  }
  seen.add(o);
  for (const [k, x] of Object.entries(o)) {
    const p = walk(x, `${path}.${k}`, seen);
    if (p) return p;
  }
  seen.delete(o);
  return null;
}
