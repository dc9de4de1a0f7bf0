import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Node } from 'yaml';
import { z } from 'zod';
import { redactUrl } from '../core/log.js';
import { ConfigError, ErrorCodes } from '../core/errors.js';
import { HttpConfig, LogConfig, PipelineConfig, SinkBaseShape } from './schema.js';
import { resolveSink, type LoadedSinkDefinition } from '../runtime/sink-registry.js';
import { sourceConnector, sourceTypes } from '../runtime/source-registry.js';
import { RETIRED_SOURCE_KEYS } from './common.js';
import { blockPassword, checkUrl, readSecretFile, urlWithPassword } from './secrets.js';
import { didYouMean } from './suggest.js';

export { didYouMean };

/** A sink block after validation: the runtime keys plus the plugin's own config. */
export interface ResolvedSink {
  base: PipelineConfig['sinks'][number] & {
    batch: { max_events: number; max_bytes: number; max_wait_ms: number };
    retry: { attempts: number; backoff_ms: number; max_backoff_ms: number };
    dead_letter: { policy: 'park' | 'stop'; path?: string };
  };
  definition: LoadedSinkDefinition;
  config: Record<string, unknown>;
}

export interface ResolvedPipeline {
  config: PipelineConfig;
  sinks: ResolvedSink[];
  /** `file:line` of the pipeline, for messages. */
  origin: string;
}

export interface LoadedConfig {
  pipelines: ResolvedPipeline[];
  http: HttpConfig;
  log: LogConfig;
  files: string[];
  /** Things that work but should change (deprecated forms), each with what to write instead. */
  warnings: string[];
}

/** Where a field sits in the YAML source. */
class Locator {
  constructor(
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
    readonly file: string,
  ) {}

  /** `file:line` of the node at `path`, or of its closest existing parent. */
  at(path: readonly PropertyKey[], key?: string): string {
    let p = [...path];
    for (;;) {
      const node = this.doc.getIn(p as unknown[], true) as Node | undefined;
      if (node && node.range) {
        let offset = node.range[0];
        if (key !== undefined && isMap(node)) {
          const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === key);
          if (pair && isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
        }
        return `${this.file}:${this.lines.linePos(offset).line}`;
      }
      if (p.length === 0) return `${this.file}:1`;
      p = p.slice(0, -1);
    }
  }
}

/** Render a zod path as `sinks[0].path`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(root)';
}

/** Keys the schema at `path` would accept, for did-you-mean hints. */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[], value: unknown): string[] {
  let s: z.ZodType | undefined = schema;
  let v: unknown = value;
  for (const p of path) {
    s = unwrap(s);
    if (!s) return [];
    if (s instanceof z.ZodObject) {
      s = (s.shape as Record<string, z.ZodType>)[String(p)];
    } else if (s instanceof z.ZodArray) {
      s = s.element as z.ZodType;
    } else if (s instanceof z.ZodDiscriminatedUnion || s instanceof z.ZodUnion) {
      s = pickUnionMember(s, v);
      s = s instanceof z.ZodObject ? (s.shape as Record<string, z.ZodType>)[String(p)] : undefined;
    } else return [];
    v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  }
  s = unwrap(s);
  if (s instanceof z.ZodDiscriminatedUnion || s instanceof z.ZodUnion) s = pickUnionMember(s, v);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

function unwrap(s: z.ZodType | undefined): z.ZodType | undefined {
  while (s && (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable)) {
    s = (s as unknown as { unwrap(): z.ZodType }).unwrap();
  }
  return s;
}

function pickUnionMember(s: z.ZodType, v: unknown): z.ZodType | undefined {
  const options = (s as unknown as { options: z.ZodType[] }).options;
  const type = v && typeof v === 'object' ? (v as Record<string, unknown>).type : undefined;
  for (const o of options) {
    const u = unwrap(o);
    if (u instanceof z.ZodObject) {
      const t = (u.shape as Record<string, z.ZodType>).type;
      if (t instanceof z.ZodLiteral && (t as z.ZodLiteral).value === type) return u;
    }
  }
  return options.map(unwrap).find((o) => o instanceof z.ZodObject);
}

/** Turn zod issues into one ConfigError whose lines each name file:line and the field. */
function issuesToError(issues: z.core.$ZodIssue[], loc: Locator, schema: z.ZodType, value: unknown, prefix: PropertyKey[] = []): ConfigError {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, issue.path, value);
      for (const key of issue.keys) {
        const hint = didYouMean(key, known);
        lines.push(`${loc.at(path, key)}: ${formatPath([...path, key])}: unknown key${hint ? ` (did you mean "${hint}"?)` : known.length ? ` (known keys: ${known.join(', ')})` : ''}`);
      }
    } else if (issue.code === 'invalid_union' && path.length && String(path[path.length - 1]) === 'type') {
      lines.push(`${loc.at(path)}: ${formatPath(path)}: ${issue.message}`);
    } else {
      lines.push(`${loc.at(path)}: ${formatPath(path)}: ${issue.message}`);
    }
  }
  return new ConfigError(ErrorCodes.CONFIG_INVALID, lines.join('\n'), {
    fix: 'correct the fields above; `tributary validate --config FILE` checks a file without running it',
  });
}

const ENV_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Substitute `${VAR}` and `${VAR:-default}` in every string scalar, keeping node positions. */
function substituteEnv(doc: Document.Parsed, loc: Locator, env: NodeJS.ProcessEnv): void {
  const missing: string[] = [];
  visit(doc, {
    Scalar(_key, node, path) {
      // eslint-disable-next-line @typescript-eslint/no-unused-expressions
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      node.value = node.value.replace(ENV_RE, (_m, name: string, def: string | undefined) => {
        const v = env[name];
        if (v !== undefined && v !== '') return v;
        if (def !== undefined) return def;
        missing.push(`${loc.file}:${lineOf(doc, node)}: ${formatPath(pathOf(path, node))}: environment variable ${name} is not set`);
        return '';
      });
    },
  });
  if (missing.length) {
    throw new ConfigError(ErrorCodes.CONFIG_ENV, missing.join('\n'), {
      fix: 'export the variable, or give a default with ${VAR:-default}',
    });
  }
}

const lineCounterFor = new WeakMap<Document.Parsed, LineCounter>();

/** The field path of a scalar from the ancestors `visit` hands over. */
function pathOf(ancestors: readonly unknown[], node: unknown): PropertyKey[] {
  const out: PropertyKey[] = [];
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (isSeq(parent)) out.push(parent.items.indexOf(child as never));
    else if (parent && typeof parent === 'object' && 'key' in parent && 'value' in parent) {
      const k = (parent as { key: unknown }).key;
      if (isScalar(k)) out.push(String(k.value));
    }
  }
  return out;
}
function lineOf(doc: Document.Parsed, node: Node): number {
  const lc = lineCounterFor.get(doc);
  return lc && node.range ? lc.linePos(node.range[0]).line : 1;
}

/** Parse and validate one config file. Throws ConfigError (exit 2) with file:line detail. */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(ErrorCodes.CONFIG_READ, `${file}: cannot read config: ${(err as Error).message}`, {
      fix: 'pass an existing YAML file with --config',
    });
  }
  const name = basename(file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  lineCounterFor.set(doc, lines);
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line ?? 1;
    throw new ConfigError(ErrorCodes.CONFIG_SYNTAX, `${name}:${line}: YAML syntax error: ${e.message.split('\n')[0]}`, {
      fix: 'fix the YAML at that line (indentation, a missing colon or quote)',
    });
  }
  const loc = new Locator(doc, lines, name);
  substituteEnv(doc, loc, env);
  const raw = doc.toJS() as unknown;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(ErrorCodes.CONFIG_INVALID, `${name}:1: the config must be a mapping with name/source/sinks or pipelines`, {
      fix: 'see docs/configuration.md for the shape',
    });
  }
  const isMulti = 'pipelines' in (raw as object);
  checkSourceTypes(raw as Record<string, unknown>, isMulti, loc);
  const top = isMulti
    ? z.object({ pipelines: z.array(PipelineConfig).min(1), http: HttpConfig, log: LogConfig }).strict()
    : PipelineConfig.extend({ http: HttpConfig, log: LogConfig }).strict();
  const parsed = top.safeParse(raw);
  if (!parsed.success) throw issuesToError(parsed.error.issues, loc, top, raw);
  const value = parsed.data as { pipelines?: PipelineConfig[]; http: HttpConfig; log: LogConfig } & PipelineConfig;
  const pipelineList: PipelineConfig[] = isMulti ? value.pipelines! : [value];
  const baseDir = dirname(resolve(file));
  const pipelines: ResolvedPipeline[] = [];
  const warnings: string[] = [];
  const names = new Set<string>();
  for (let pi = 0; pi < pipelineList.length; pi++) {
    const p = pipelineList[pi]!;
    const prefix: PropertyKey[] = isMulti ? ['pipelines', pi] : [];
    if (names.has(p.name)) {
      throw new ConfigError(ErrorCodes.CONFIG_INVALID, `${loc.at([...prefix, 'name'])}: ${formatPath([...prefix, 'name'])}: duplicate pipeline name "${p.name}"`, {
        fix: 'give every pipeline a unique name',
      });
    }
    names.add(p.name);
    resolvePipelineFiles(p, baseDir, prefix, loc, warnings);
    const sinks: ResolvedSink[] = [];
    const sinkNames = new Set<string>();
    for (let si = 0; si < p.sinks.length; si++) {
      const block = p.sinks[si]! as Record<string, unknown>;
      const path = [...prefix, 'sinks', si];
      if (sinkNames.has(String(block.name))) {
        throw new ConfigError(ErrorCodes.CONFIG_INVALID, `${loc.at([...path, 'name'])}: ${formatPath([...path, 'name'])}: duplicate sink name "${block.name}"`, {
          fix: 'give every sink of a pipeline a unique name (it keys the checkpoint)',
        });
      }
      sinkNames.add(String(block.name));
      let definition: LoadedSinkDefinition;
      try {
        definition = await resolveSink(String(block.type), baseDir);
      } catch (err) {
        const e = err as ConfigError;
        throw new ConfigError(e.code ?? ErrorCodes.CONFIG_SINK_TYPE, `${loc.at([...path, 'type'])}: ${formatPath([...path, 'type'])}: ${e.message}`, { fix: e.fix });
      }
      const schema = z.object({ ...SinkBaseShape, ...definition.config.shape }).strict();
      const r = schema.safeParse(block);
      if (!r.success) throw issuesToError(r.error.issues, loc, schema, block, path);
      // The plugin's own keys: everything that is not a runtime key.
      const own = Object.fromEntries(Object.entries(r.data as Record<string, unknown>).filter(([k]) => !(k in SinkBaseShape)));
      const base = r.data as ResolvedSink['base'];
      resolveSinkFiles(base, own, definition, baseDir, path, loc);
      // Whether the user wrote `batch` (the parsed block always has the schema default).
      const rawPipe = (isMulti ? (raw as { pipelines: unknown[] }).pipelines[pi] : raw) as { sinks?: Record<string, unknown>[] };
      const userBatch = !!rawPipe.sinks?.[si] && 'batch' in rawPipe.sinks[si]!;
      if (!userBatch && definition.batch) base.batch = { ...base.batch, ...definition.batch };
      sinks.push({ base, definition, config: own });
    }
    pipelines.push({ config: p, sinks, origin: loc.at(prefix) });
  }
  return { pipelines, http: resolveHttp(value.http, baseDir, loc), log: value.log, files: [file], warnings };
}

/**
 * Each pipeline's `source.type` names a registered connector, checked before the schema runs:
 * an unknown type fails with the known ones and the nearest name, where zod would only say
 * that the discriminator is invalid (and report the other keys against no schema).
 */
function checkSourceTypes(raw: Record<string, unknown>, isMulti: boolean, loc: Locator): void {
  const list: unknown[] = isMulti ? (Array.isArray(raw.pipelines) ? raw.pipelines : []) : [raw];
  list.forEach((p, i) => {
    const src = p && typeof p === 'object' ? (p as Record<string, unknown>).source : undefined;
    if (!src || typeof src !== 'object' || Array.isArray(src)) return; // the schema reports it
    const type = (src as Record<string, unknown>).type;
    if (typeof type === 'string' && sourceConnector(type)) return;
    const path: PropertyKey[] = [...(isMulti ? ['pipelines', i] : []), 'source', 'type'];
    const known = sourceTypes();
    const hint = typeof type === 'string' ? didYouMean(type, known) : undefined;
    const what = type === undefined || type === null ? 'no source type given' : `unknown source type ${JSON.stringify(type)}${hint ? ` (did you mean "${hint}"?)` : ''}`;
    throw new ConfigError(ErrorCodes.CONFIG_SOURCE_TYPE, `${loc.at(path)}: ${formatPath(path)}: ${what}`, { fix: `use one of: ${known.join(', ')}` });
  });
}

/** `p` made absolute against `baseDir` (the config file's directory), as plugin paths are. */
function fromConfigDir(baseDir: string, p: string): string {
  return resolve(baseDir, p);
}

/**
 * The pipeline's files and secrets: `state.dir` and `password_file` resolve against the
 * config file's directory; the source's `password`/`password_file` goes into its URL
 * (percent-encoded); every URL is checked without being echoed.
 */
function resolvePipelineFiles(p: PipelineConfig, baseDir: string, prefix: PropertyKey[], loc: Locator, warnings: string[]): void {
  if (p.state.type === 'file') p.state.dir = fromConfigDir(baseDir, p.state.dir);
  else checkUrl(p.state.url, formatPath([...prefix, 'state', 'url']), loc.at([...prefix, 'state', 'url']));
  if (p.stream.type === 'redis') {
    // The old form: it shared snapshot chunk jobs and kept the in-memory stream. It still
    // does, with a note showing the new form.
    checkUrl(p.stream.url, formatPath([...prefix, 'stream', 'url']), loc.at([...prefix, 'stream', 'url']));
    warnings.push(
      `${loc.at([...prefix, 'stream'])}: stream: { type: redis } is deprecated: it only shares snapshot chunk jobs. Write \`snapshot: { queue: { redis: ${JSON.stringify(redactUrl(p.stream.url))} } }\` instead (the stream is then the durable log; add \`stream: { type: memory }\` to keep the in-memory one)`,
    );
    p.snapshot = { ...p.snapshot, queue: { redis: p.stream.url } };
    p.stream = { type: 'memory', max_bytes: p.stream.max_bytes };
  }
  if (p.snapshot.queue) checkUrl(p.snapshot.queue.redis, formatPath([...prefix, 'snapshot', 'queue', 'redis']), loc.at([...prefix, 'snapshot', 'queue', 'redis']));
  const src = p.source;
  const at = loc.at([...prefix, 'source']);
  if (src.password_file) src.password_file = fromConfigDir(baseDir, src.password_file);
  checkUrl(src.url, formatPath([...prefix, 'source', 'url']), loc.at([...prefix, 'source', 'url']));
  const password = blockPassword(src, formatPath([...prefix, 'source']), at);
  if (password !== undefined) src.url = urlWithPassword(src.url, password, formatPath([...prefix, 'source', 'url']), loc.at([...prefix, 'source', 'url']));
  delete src.password;
  delete src.password_file;
  const block = src as Record<string, unknown>;
  for (const [key, why] of Object.entries(RETIRED_SOURCE_KEYS)) {
    if (!(key in block)) continue;
    warnings.push(`${loc.at([...prefix, 'source', key])}: source.${key} is deprecated and ignored: ${why}. Remove it from the config`);
    delete block[key];
  }
}

/**
 * A sink's files and secrets: `dead_letter.path` and the keys its definition lists in `paths`
 * resolve against the config file's directory; `password_file` (when the sink declares it)
 * is read into `password`; a `url` is checked without being echoed.
 */
function resolveSinkFiles(base: ResolvedSink['base'], own: Record<string, unknown>, def: LoadedSinkDefinition, baseDir: string, path: PropertyKey[], loc: Locator): void {
  if (base.dead_letter.path) base.dead_letter.path = fromConfigDir(baseDir, base.dead_letter.path);
  for (const key of def.paths ?? []) {
    if (typeof own[key] === 'string' && own[key] !== '') own[key] = fromConfigDir(baseDir, own[key]);
  }
  if (typeof own.url === 'string') checkUrl(own.url, formatPath([...path, 'url']), loc.at([...path, 'url']));
  if (typeof own.password_file === 'string') {
    own.password_file = fromConfigDir(baseDir, own.password_file);
    own.password = blockPassword(own, formatPath(path), loc.at(path));
    delete own.password_file;
  }
}

/** `http` with `auth_token_file` read into `auth_token` (an empty value means no token). */
function resolveHttp(http: HttpConfig, baseDir: string, loc: Locator): HttpConfig {
  const out = { ...http };
  if (out.auth_token === '') delete out.auth_token;
  if (out.auth_token_file === '') delete out.auth_token_file;
  if (out.auth_token_file !== undefined) {
    if (out.auth_token !== undefined) {
      throw new ConfigError(ErrorCodes.CONFIG_SECRET_TWICE, `${loc.at(['http'])}: http: both auth_token and auth_token_file are set`, { fix: 'keep one of them' });
    }
    out.auth_token_file = fromConfigDir(baseDir, out.auth_token_file);
    out.auth_token = readSecretFile(out.auth_token_file, 'http.auth_token_file', loc.at(['http', 'auth_token_file']));
    if (out.auth_token.length < 16) {
      throw new ConfigError(ErrorCodes.CONFIG_INVALID, `${loc.at(['http', 'auth_token_file'])}: http.auth_token_file: the token is shorter than 16 characters`, { fix: 'use a longer token, e.g. `openssl rand -hex 32`' });
    }
  }
  return out;
}

/** Load several files (`--config a.yaml --config b.yaml`): their pipelines run side by side. */
export async function loadConfig(files: string[], env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  if (!files.length) {
    throw new ConfigError(ErrorCodes.USAGE, 'no config file given', { fix: 'pass --config FILE (see docs/configuration.md)' });
  }
  const loaded = await Promise.all(files.map((f) => loadConfigFile(f, env)));
  const names = new Set<string>();
  for (const l of loaded) {
    for (const p of l.pipelines) {
      if (names.has(p.config.name)) {
        throw new ConfigError(ErrorCodes.CONFIG_INVALID, `${p.origin}: pipeline "${p.config.name}" is defined twice across the config files`, {
          fix: 'give every pipeline a unique name',
        });
      }
      names.add(p.config.name);
    }
  }
  return {
    pipelines: loaded.flatMap((l) => l.pipelines),
    http: loaded[0]!.http,
    log: loaded[0]!.log,
    files,
    warnings: loaded.flatMap((l) => l.warnings),
  };
}

