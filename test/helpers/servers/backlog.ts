/**
 * The sink benchmark backlog: `events` change events over a 7-column table (bigint id, int,
 * text, numeric string, timestamptz string, text, json object), insert-heavy with updates
 * (80/20), built with the conformance kit's `makeSinkEvent` in transactions of 100 events,
 * and the driver that drains it through `write()` in batches of 2,000 with `commit` set.
 */
import { pino } from 'pino';
import type { ChangeEvent, Row } from '../../../src/core/event.js';
import type { SinkDefinition, SinkEvent } from '../../../src/sdk/index.js';
import { makeSinkEvent } from '../../../src/testing/index.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function buildBacklog(events: number, table = 'bench'): SinkEvent[] {
  const out: SinkEvent[] = [];
  let nextId = 1;
  const t0 = Date.parse('2024-01-15T10:30:00Z');
  for (let i = 0; i < events; i++) {
    const update = nextId > 100 && i % 5 === 4;
    const id = update ? 1 + ((i * 7919) % (nextId - 1)) : nextId++;
    const after: Row = {
      id,
      qty: (id * 31 + i) % 10_000,
      title: `product ${id} revision ${i} lorem ipsum dolor`,
      price: `${id % 9999}.${String(i % 100).padStart(2, '0')}`,
      updated_at: new Date(t0 + i * 1000).toISOString().replace('Z', '123Z'),
      status: ['new', 'paid', 'shipped', 'returned'][i % 4]!,
      attrs: { color: ['red', 'green', 'blue'][id % 3]!, size: id % 50, tags: ['a', String(i % 10)] },
    };
    const ev: ChangeEvent = {
      op: update ? 'u' : 'c',
      before: null,
      after,
      key: { id },
      source: { connector: 'postgresql', name: 'bench', db: 'bench', schema: 'public', table, ts_ms: t0 + i, snapshot: 'false' },
      ts_ms: t0 + i,
    };
    out.push(makeSinkEvent(ev, 1 + Math.floor(i / 100), i % 100));
  }
  return out;
}

/** Create the sink, drain the backlog in batches of 2,000 (commit = last position), close. */
export async function drain(def: SinkDefinition, config: Record<string, unknown>, backlog: SinkEvent[]): Promise<number> {
  const sink = await def.create(def.config.parse(config) as never, {
    logger: pino({ level: 'silent' }),
    metrics: { inc() {}, set() {} },
    signal: new AbortController().signal,
    pipeline: 'bench',
    sinkName: def.type,
    stateDir: mkdtempSync(join(tmpdir(), 'tributary-bench-')),
  });
  try {
    await sink.open?.({ position: null, state: undefined });
    const start = performance.now();
    for (let i = 0; i < backlog.length; i += 2000) {
      const batch = backlog.slice(i, i + 2000);
      await sink.write(batch, { signal: new AbortController().signal, commit: batch[batch.length - 1]!.position });
    }
    return (performance.now() - start) / 1000;
  } finally {
    await sink.close();
  }
}
