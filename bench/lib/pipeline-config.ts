/** Writes the YAML of one benchmark pipeline into a scratch directory. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BenchPipeline extends Disposable {
  dir: string;
  config: string;
  /** The jsonl output (when the sink writes one). */
  out: string;
  /** The sink's checkpoint file in the file state store. */
  checkpoint: string;
}

/**
 * `source` is the YAML of the source block (unindented); `sink` the sink's YAML after
 * `name: bench` (unindented). The sink is always named `bench`.
 */
export function benchPipeline(name: string, source: string, sink: (out: string, dir: string) => string, stream?: string): BenchPipeline {
  const dir = mkdtempSync(join(tmpdir(), `tributary-bench-${name}-`));
  const out = join(dir, 'out.jsonl');
  const indent = (s: string, n: number) => s.trim().replace(/^/gm, ' '.repeat(n));
  const yaml = `name: ${name}
source:
${indent(source, 2)}
${stream ? `stream: ${stream}\n` : ''}state: { type: file, dir: ${join(dir, 'state')} }
sinks:
  - name: bench
${indent(sink(out, dir), 4)}
http: { port: 0 }
log: { level: warn }
`;
  const config = join(dir, 'pipeline.yaml');
  writeFileSync(config, yaml);
  return {
    dir,
    config,
    out,
    checkpoint: join(dir, 'state', name, 'sink.bench.json'),
    [Symbol.dispose]() {
      if (!process.env.TRIBUTARY_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const jsonlSink = (out: string) => `type: jsonl\npath: ${out}`;
export const nullSink = () => 'type: "null"';
