import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
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
  if (!def || typeof def.create !== 'function' || typeof (def.config as { safeParse?: unknown } | undefined)?.safeParse !== 'function' || !(def.config as { shape?: unknown }).shape) {
    throw new ConfigError(ErrorCodes.CONFIG_SINK_TYPE, `sink plugin "${type}" does not default-export defineSink({ type, config, create })`, {
      fix: 'export default defineSink({...}) from tributary/sdk, with a zod object as config',
    });
  }
  return def;
}
