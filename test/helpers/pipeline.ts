import { readFileSync, existsSync } from 'node:fs';
import { pino } from 'pino';
import type { ChangeEvent, Row } from '../../src/core/event.js';
import { loadConfig } from '../../src/config/load.js';
import { Metrics, defineRuntimeMetrics } from '../../src/runtime/metrics.js';
import { Pipeline } from '../../src/runtime/pipeline.js';
import { TempDir, waitFor } from './context.js';

/** Read a jsonl sink's file as envelopes. */
export function readJsonl(path: string): ChangeEvent[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ChangeEvent);
}

/**
 * A pipeline running inside the test process, from YAML, with a jsonl sink at `out`.
 * Disposing it drains and stops the pipeline.
 */
export class InProcessPipeline implements AsyncDisposable {
  private constructor(
    readonly pipeline: Pipeline,
    readonly dir: TempDir,
    readonly out: string,
    readonly metrics: Metrics,
  ) {}

  static async start(opts: { name: string; source: string; sinksYaml?: string; extraYaml?: string }): Promise<InProcessPipeline> {
    const dir = new TempDir('tributary-pipe-');
    const out = dir.file('out.jsonl');
    const yaml = `name: ${opts.name}
source:
${opts.source.replace(/^/gm, '  ')}
state: { type: file, dir: ${dir.path}/state }
sinks:
  - name: audit
    type: jsonl
    path: ${out}
${opts.sinksYaml ?? ''}
http: { port: 0 }
${opts.extraYaml ?? ''}
`;
    const cfg = await loadConfig([dir.file('pipeline.yaml', yaml)]);
    const metrics = new Metrics();
    defineRuntimeMetrics(metrics);
    const p = new Pipeline(cfg.pipelines[0]!, pino({ level: process.env.TRIBUTARY_TEST_LOG ?? 'silent' }), metrics);
    await p.start();
    return new InProcessPipeline(p, dir, out, metrics);
  }

  events(): ChangeEvent[] {
    return readJsonl(this.out);
  }

  /** Wait until the jsonl sink holds at least `n` events; return them. */
  async waitForEvents(n: number, timeoutMs = 20_000): Promise<ChangeEvent[]> {
    let evs: ChangeEvent[] = [];
    await waitFor(() => (evs = this.events()).length >= n, { timeoutMs, what: `${n} events (have ${evs.length})` });
    return evs;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.pipeline.drainAndStop(5000);
    await this.dir[Symbol.asyncDispose]();
  }
}

/** Apply change events in order to a map keyed by primary key: the state they describe. */
export function replay(events: ChangeEvent[]): Map<string, Row> {
  const m = new Map<string, Row>();
  for (const e of events) {
    if (e.op === 't') m.clear();
    else if (e.op === 'd') m.delete(JSON.stringify(e.key));
    else {
      if (e.op === 'u' && e.before && JSON.stringify(e.key) !== JSON.stringify({ id: e.before.id })) m.delete(JSON.stringify({ id: e.before.id }));
      m.set(JSON.stringify(e.key), e.after!);
    }
  }
  return m;
}

