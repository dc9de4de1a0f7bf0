import { parseArgs } from 'node:util';
import type { Server } from 'node:http';
import { ConfigError, ErrorCodes, TributaryError, errorMessage } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { loadConfig } from '../config/load.js';
import { Metrics, defineRuntimeMetrics } from '../runtime/metrics.js';
import { Pipeline } from '../runtime/pipeline.js';
import { startHttp } from '../http/server.js';
import { createSource } from '../runtime/sources.js';
import { openStateStore } from '../state/open.js';
import type { SnapshotState } from '../snapshot/types.js';

const USAGE = `tributary: change-data-capture from Postgres and MySQL/MariaDB to your sinks

Usage:
  tributary run      --config FILE [--config FILE ...]   run the pipelines until SIGINT/SIGTERM
  tributary validate --config FILE [--check-source]      check the config (and the database)
  tributary status   --config FILE                       positions, per-sink lag, snapshot progress
  tributary snapshot --config FILE --table T [--where SQL] [--pipeline P] [--cancel|--pause|--resume]
  tributary binlog decode FILE...                        decode binlog files to JSONL on stdout
  tributary demo                                         embedded Postgres, live traffic, events on screen

Exit codes: 0 success, 1 runtime failure, 2 usage or config error.
Docs: README.md and docs/ in the repository.`;

/** Exit code 2 for usage and config errors, 1 for everything else. */
export function exitCodeFor(err: unknown): number {
  return err instanceof ConfigError ? 2 : 1;
}

function printError(err: unknown): void {
  process.stderr.write(`error: ${errorMessage(err)}\n`);
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'validate':
        return await cmdValidate(rest);
      case 'status':
        return await cmdStatus(rest);
      case 'snapshot':
        return await cmdSnapshot(rest);
      case 'binlog':
        return await cmdBinlog(rest);
      case 'docs': {
        // Internal: regenerate docs/configuration.md from the schemas.
        const { renderConfigReference } = await import('../config/docs.js');
        process.stdout.write(await renderConfigReference());
        return;
      }
      case 'demo': {
        const { runDemo } = await import('./demo.js');
        return await runDemo(rest);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        if (cmd === undefined) process.exitCode = 2;
        return;
      default:
        throw new ConfigError(ErrorCodes.USAGE, `unknown command "${cmd}"`, { fix: 'run `tributary help` for the list of commands' });
    }
  } catch (err) {
    printError(err);
    process.exitCode = exitCodeFor(err);
  }
}

function args<O extends import('node:util').ParseArgsConfig['options']>(rest: string[], options: O) {
  try {
    return parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError(ErrorCodes.USAGE, (err as Error).message, { fix: 'run `tributary help` for usage' });
  }
}

function configFiles(v: unknown): string[] {
  const files = (Array.isArray(v) ? v : v ? [v] : []) as string[];
  if (!files.length) throw new ConfigError(ErrorCodes.USAGE, 'missing --config FILE', { fix: 'pass --config path/to/tributary.yaml' });
  return files;
}

async function cmdRun(rest: string[]): Promise<void> {
  const { values } = args(rest, { config: { type: 'string', multiple: true, short: 'c' }, worker: { type: 'boolean' } });
  const cfg = await loadConfig(configFiles(values.config));
  if (values.worker) return runWorker(cfg);
  const logger = createLogger({ level: process.env.TRIBUTARY_LOG_LEVEL ?? cfg.log.level });
  const metrics = new Metrics();
  defineRuntimeMetrics(metrics);
  const pipelines = cfg.pipelines.map((p) => new Pipeline(p, logger.child({ pipeline: p.config.name }), metrics));
  let server: Server | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'draining: no new reads; waiting for sinks to commit what they hold');
    await Promise.all(pipelines.map((p) => p.drainAndStop()));
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
  try {
    for (const p of pipelines) await p.start();
    if (cfg.http.port) {
      server = await startHttp({
        host: cfg.http.host,
        port: cfg.http.port,
        pipelines,
        metrics,
        logger,
        routes: {
          post: {
            '/snapshot': async (body) => {
              const b = body as { pipeline?: string; table?: string | null; where?: string | null; action?: 'start' | 'pause' | 'resume' | 'cancel' };
              const p = pipelines.find((x) => x.name === (b.pipeline ?? pipelines[0]!.name));
              if (!p?.snapshots) return { status: 404, body: { error: `no running pipeline named ${b.pipeline}` } };
              return p.snapshots.control(b.action ?? 'start', b.table ?? null, b.where ?? null);
            },
          },
        },
      });
    }
    await Promise.all(pipelines.map((p) => p.done));
  } catch (err) {
    await Promise.all(pipelines.map((p) => p.close()));
    throw err;
  } finally {
    server?.close();
  }
  const failed = pipelines.find((p) => p.state === 'failed');
  logger.info({ pipelines: pipelines.map((p) => ({ name: p.name, state: p.state })) }, 'stopped');
  logger.flush();
  if (failed) {
    process.stderr.write(`error: pipeline ${failed.name} failed: ${errorMessage(failed.error)}\n`);
    process.exitCode = 1;
  }
}

/**
 * `tributary run --worker`: no streaming, only snapshot chunk jobs from the BullMQ queues of
 * pipelines with `stream.type: redis`, so several machines share one big table.
 */
async function runWorker(cfg: Awaited<ReturnType<typeof loadConfig>>): Promise<void> {
  const logger = createLogger({ level: process.env.TRIBUTARY_LOG_LEVEL ?? cfg.log.level });
  const { ChunkQueue } = await import('../snapshot/distributed.js');
  const queues: InstanceType<typeof ChunkQueue>[] = [];
  const cleanup: (() => Promise<void>)[] = [];
  for (const p of cfg.pipelines) {
    const st = p.config.stream;
    if (st.type !== 'redis') {
      throw new ConfigError(ErrorCodes.CONFIG_INVALID, `${p.origin}: pipeline ${p.config.name}: --worker needs stream.type: redis (the chunk jobs are shared through it)`, {
        fix: 'set stream: { type: redis, url: redis://... } in the pipeline and in the coordinator',
      });
    }
    const ac = new AbortController();
    const state = p.config.state;
    const store = await openStateStore(state);
    const source = await createSource(p.config, { pipeline: p.config.name, logger, signal: ac.signal, metrics: new Metrics(), store });
    if (!source.snapshots) throw new TributaryError(ErrorCodes.SNAPSHOT, `the ${p.config.source.type} source cannot snapshot`, { fix: 'remove --worker' });
    const q = new ChunkQueue(st.url, p.config.name);
    let chunks = 0;
    q.work(source.snapshots(), p.config.source.snapshot_workers || 1, logger, (job, rows) => {
      chunks++;
      logger.info({ pipeline: p.config.name, table: job.table.name, rows, chunks }, 'snapshot chunk done');
    });
    queues.push(q);
    cleanup.push(async () => {
      await q.close();
      await source.close();
      await store.close();
    });
  }
  logger.info({ pipelines: cfg.pipelines.map((p) => p.config.name) }, 'snapshot worker waiting for chunk jobs');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  for (const c of cleanup) await c();
  logger.info('snapshot worker stopped');
  logger.flush();
}

async function cmdValidate(rest: string[]): Promise<void> {
  const { values } = args(rest, { config: { type: 'string', multiple: true, short: 'c' }, 'check-source': { type: 'boolean' } });
  const cfg = await loadConfig(configFiles(values.config));
  for (const p of cfg.pipelines) {
    process.stdout.write(`${p.origin}: pipeline ${p.config.name}: ${p.config.source.type} source, ${p.sinks.length} sink(s): ok\n`);
  }
  if (!values['check-source']) return;
  const logger = createLogger({ level: 'silent' });
  let errors = 0;
  for (const p of cfg.pipelines) {
    const ac = new AbortController();
    const st = p.config.state;
    const store = await openStateStore(st);
    const source = await createSource(p.config, { pipeline: p.config.name, logger, signal: ac.signal, metrics: new Metrics(), store });
    try {
      const problems = await source.preflight();
      for (const pr of problems) {
        if (pr.severity === 'error') errors++;
        process.stdout.write(`${pr.severity === 'error' ? 'ERROR' : 'warning'} ${pr.code} ${p.config.name}: ${pr.message}\n    fix: ${pr.fix}\n`);
      }
      if (!problems.some((x) => x.severity === 'error')) process.stdout.write(`${p.config.name}: source preflight ok\n`);
    } catch (err) {
      errors++;
      process.stdout.write(`ERROR ${p.config.name}: ${errorMessage(err)}\n`);
    } finally {
      await source.close();
      await store.close();
    }
  }
  if (errors) {
    throw new ConfigError(ErrorCodes.CONFIG_INVALID, `source preflight found ${errors} problem(s)`, { fix: 'apply the fixes listed above' });
  }
}

async function cmdStatus(rest: string[]): Promise<void> {
  const { values } = args(rest, { config: { type: 'string', multiple: true, short: 'c' }, json: { type: 'boolean' } });
  const cfg = await loadConfig(configFiles(values.config));
  type Live = { pipelines: { name: string }[] };
  let live = null as Live | null;
  if (cfg.http.port) {
    try {
      const r = await fetch(`http://${cfg.http.host}:${cfg.http.port}/status`, { signal: AbortSignal.timeout(1500) });
      live = (await r.json()) as Live;
    } catch {
      live = null;
    }
  }
  const out: Record<string, unknown>[] = [];
  for (const p of cfg.pipelines) {
    const st = p.config.state;
    const store = await openStateStore(st);
    try {
      const sinks = await store.loadSinks(p.config.name);
      const snap = await store.get<SnapshotState>(p.config.name, 'snapshot');
      const snapshot = snap && {
        id: snap.id,
        kind: snap.kind,
        status: snap.status,
        error: snap.error ?? null,
        tables: snap.tables.map((t) => ({ table: t.table.name, chunksDone: t.done.filter(Boolean).length, chunks: t.chunks.length, rows: t.rows, estimate: t.table.estimate })),
      };
      out.push({
        pipeline: p.config.name,
        running: live?.pipelines.find((x) => x.name === p.config.name) ?? null,
        sinks: Object.fromEntries(p.sinks.map((s) => [s.base.name, sinks[s.base.name] ? { position: sinks[s.base.name]!.position, committedAt: new Date(sinks[s.base.name]!.at).toISOString() } : null])),
        snapshot: snapshot ?? null,
      });
    } finally {
      await store.close();
    }
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  for (const p of out) {
    const running = p.running as { state: string; sinks: { name: string; lagEvents: number; lagSeconds: number }[] } | null;
    process.stdout.write(`pipeline ${p.pipeline}: ${running ? running.state : 'not running (positions from the state store)'}\n`);
    for (const [name, s] of Object.entries(p.sinks as Record<string, { position: string; committedAt: string } | null>)) {
      const lag = running?.sinks.find((x) => x.name === name);
      process.stdout.write(`  sink ${name}: ${s ? `position ${s.position} (committed ${s.committedAt})` : 'no checkpoint yet'}${lag ? `, lag ${lag.lagEvents} events / ${lag.lagSeconds.toFixed(1)} s` : ''}\n`);
    }
    const snap = p.snapshot as { id: string; kind: string; status: string; error: { code: string; message: string; fix?: string } | null; tables: { table: string; chunksDone: number; chunks: number; rows: number; estimate: number | null }[] } | null;
    if (snap) {
      const why = snap.status === 'failed' && snap.error ? `: ${snap.error.code} ${snap.error.message}${snap.error.fix ? ` (fix: ${snap.error.fix}; it is retried until it succeeds)` : ''}` : '';
      process.stdout.write(`  snapshot ${snap.id} (${snap.kind}): ${snap.status}${why}\n`);
      for (const t of snap.tables) process.stdout.write(`    ${t.table}: ${t.chunksDone}/${t.chunks} chunks, ${t.rows} rows ${t.estimate === null ? '(no estimate)' : `of ~${t.estimate}`}\n`);
    }
  }
}

async function cmdSnapshot(rest: string[]): Promise<void> {
  const { values } = args(rest, {
    config: { type: 'string', multiple: true, short: 'c' },
    table: { type: 'string' },
    where: { type: 'string' },
    pipeline: { type: 'string' },
    cancel: { type: 'boolean' },
    pause: { type: 'boolean' },
    resume: { type: 'boolean' },
  });
  const cfg = await loadConfig(configFiles(values.config));
  if (!values.table) throw new ConfigError(ErrorCodes.USAGE, 'missing --table', { fix: 'pass --table schema.table' });
  if (!cfg.http.port) throw new ConfigError(ErrorCodes.USAGE, 'the config turns the HTTP API off (http.port: 0)', { fix: 'set http.port so the running pipeline can take snapshot requests' });
  const pipeline = values.pipeline ?? cfg.pipelines[0]!.config.name;
  const action = values.cancel ? 'cancel' : values.pause ? 'pause' : values.resume ? 'resume' : 'start';
  let r: Response;
  try {
    r = await fetch(`http://${cfg.http.host}:${cfg.http.port}/snapshot`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pipeline, table: values.table, where: values.where ?? null, action }),
    });
  } catch (err) {
    throw new TributaryError(ErrorCodes.SNAPSHOT, `no running pipeline answers on ${cfg.http.host}:${cfg.http.port}: ${errorMessage(err)}`, {
      fix: 'start it with `tributary run --config FILE` first',
    });
  }
  const body = await r.text();
  process.stdout.write(body + '\n');
  if (!r.ok) process.exitCode = 1;
}

async function cmdBinlog(rest: string[]): Promise<void> {
  const [sub, ...files] = rest;
  if (sub !== 'decode' || !files.length) {
    throw new ConfigError(ErrorCodes.USAGE, 'usage: tributary binlog decode FILE...', { fix: 'pass one or more binlog files' });
  }
  const { runBinlogDecode } = await import('./binlog-decode.js');
  await runBinlogDecode(files);
}
