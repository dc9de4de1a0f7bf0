import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ConfigError, ErrorCodes } from '../core/errors.js';
import { didYouMean } from '../config/suggest.js';
import type { SinkDefinition } from '../sdk/index.js';

export type LoadedSinkDefinition = SinkDefinition<z.ZodObject>;

type Loader = () => Promise<{ default: LoadedSinkDefinition }>;

/**
 * Built-in sinks, registered explicitly and imported lazily: a pipeline only loads the sinks
 * it uses (and their client libraries). Nothing scans directories.
 */
const builtins: Record<string, Loader> = {
  jsonl: () => import('../../sinks/jsonl/index.js'),
  stdout: () => import('../../sinks/stdout/index.js'),
  redis: () => import('../../sinks/redis/index.js'),
  null: () => import('../../sinks/null/index.js'),
  postgres: () => import('../../sinks/postgres/index.js'),
  duckdb: () => import('../../sinks/duckdb/index.js'),
  clickhouse: () => import('../../sinks/clickhouse/index.js'),
  elasticsearch: () => import('../../sinks/elasticsearch/index.js'),
  opensearch: () => import('../../sinks/elasticsearch/index.js'),
  manticore: () => import('../../sinks/manticore/index.js'),
};


export function builtinSinkTypes(): string[] {
  return Object.keys(builtins).sort();
}

/**
 * Resolve a sink `type`: a built-in name, a path (`./my-sink.js`, relative to the config
 * file) or a package name. An unknown name fails at once with the list of known ones.
 */
export async function resolveSink(type: string, baseDir: string): Promise<LoadedSinkDefinition> {
  const builtin = builtins[type];
  let mod: { default?: unknown };
  if (builtin) {
    mod = await builtin();
  } else if (type.startsWith('.') || isAbsolute(type) || type.includes('/') || type.startsWith('@')) {
    const spec = type.startsWith('.') || isAbsolute(type) ? pathToFileURL(resolve(baseDir, type)).href : type;
    try {
      mod = (await import(spec)) as { default?: unknown };
    } catch (err) {
      throw new ConfigError(ErrorCodes.CONFIG_SINK_TYPE, `cannot load sink plugin "${type}": ${(err as Error).message}`, {
        fix: `check the path (relative to the config file) or install the package; built-in types are: ${builtinSinkTypes().join(', ')}`,
        cause: err,
      });
    }
  } else {
    const hint = didYouMean(type, builtinSinkTypes());
    throw new ConfigError(ErrorCodes.CONFIG_SINK_TYPE, `unknown sink type "${type}"${hint ? ` (did you mean "${hint}"?)` : ''}`, {
      fix: `use one of: ${builtinSinkTypes().join(', ')}, or a plugin path such as ./my-sink.js`,
    });
  }
  const def = mod.default as LoadedSinkDefinition | undefined;
  const major = def && typeof def === 'object' ? zodMajorOf(def.config) : null;
  if (major !== null && major !== ZOD_MAJOR) {
    // Caught here, by name: a schema of another zod major fails later inside zod with
    // "Invalid element at key …: expected a Zod schema", which says nothing about the cause.
    throw new ConfigError(ErrorCodes.PLUGIN_ZOD_MAJOR, `sink plugin "${type}" was built against zod ${major}: its config schema is a zod ${major} object, and tributary needs zod ${ZOD_MAJOR}`, {
      fix: `in the plugin project, install zod ${ZOD_MAJOR} (npm install zod@^${ZOD_MAJOR}), import { z } from 'zod', and build the plugin again`,
    });
  }
  if (!def || typeof def.create !== 'function' || typeof (def.config as { safeParse?: unknown } | undefined)?.safeParse !== 'function' || !(def.config as { shape?: unknown }).shape) {
    throw new ConfigError(ErrorCodes.CONFIG_SINK_TYPE, `sink plugin "${type}" does not default-export defineSink({ type, config, create })`, {
      fix: 'export default defineSink({...}) from tributary/sdk, with a zod object as config',
    });
  }
  return def;
}

/** The zod major this build of tributary uses (its schemas carry it in `_zod.version`). */
const ZOD_MAJOR: number = (z.object({}) as unknown as { _zod: { version: { major: number } } })._zod.version.major;

/**
 * The zod major a sink's config schema (and each of its fields) was made with: zod 4 stamps
 * `_zod.version` on every schema, zod 3 has `_def` and no `_zod`. Null when it is no zod
 * schema at all (reported by the shape check).
 */
function zodMajorOf(schema: unknown): number | null {
  const one = (x: unknown): number | null => {
    if (!x || typeof x !== 'object') return null;
    const v = (x as { _zod?: { version?: { major?: unknown } } })._zod?.version?.major;
    if (typeof v === 'number') return v;
    return '_def' in x && typeof (x as { safeParse?: unknown }).safeParse === 'function' ? 3 : null;
  };
  const top = one(schema);
  if (top === null || top !== ZOD_MAJOR) return top;
  for (const field of Object.values((schema as { shape?: Record<string, unknown> }).shape ?? {})) {
    const m = one(field);
    if (m !== null && m !== top) return m;
  }
  return top;
}
