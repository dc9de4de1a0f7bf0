import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ErrorCodes, TributaryError } from '../core/errors.js';

/**
 * The metrics facade every part of Tributary updates: `define`, `inc`, `set` (and `get`, for
 * tests and the demo), backed by a prom-client {@link Registry} that renders `/metrics`.
 *
 * Why a facade over prom-client rather than prom-client's API everywhere: sources, sinks and
 * the runtime only name a metric and its labels; which metrics exist, their help and their
 * label names live in one place ({@link defineRuntimeMetrics}, docs/metrics.md). Updates stay
 * cheap: the labelled child of each series is made once and cached, first by the identity of
 * the labels object (callers that keep one labels object per sink pay one WeakMap lookup), then
 * by a string key; prom-client's own per-update work is a hash of the label values.
 */
export type Labels = Record<string, string>;

/** Counter or gauge, as Prometheus types them. */
export type MetricType = 'counter' | 'gauge';

/** One labelled series: its prom-client child and the value mirrored for {@link Metrics.get}. */
interface Series {
  labels: Labels;
  value: number;
  inc(v: number): void;
  set(v: number): void;
}

interface Family {
  type: MetricType;
  help: string;
  /** Fixed when the prom-client metric is made: by `define`, or by the first update's labels. */
  labelNames?: string[];
  metric?: Counter<string> | Gauge<string>;
  byKey: Map<string, Series>;
  byObject: WeakMap<Labels, Series>;
}

export class Metrics {
  /** The prom-client registry `/metrics` renders (its content type is {@link contentType}). */
  readonly registry = new Registry();
  private readonly families = new Map<string, Family>();
  private processMetrics = false;

  /**
   * Declare a metric. With `labelNames` it is registered at once, so `/metrics` lists it (HELP
   * and TYPE) before its first sample; without, it is registered at its first update with that
   * update's label names. Defining a name twice keeps the first definition.
   */
  define(name: string, type: MetricType, help: string, labelNames?: readonly string[]): void {
    if (this.families.has(name)) return;
    const fam: Family = { type, help, byKey: new Map(), byObject: new WeakMap() };
    this.families.set(name, fam);
    if (labelNames) this.register(name, fam, [...labelNames]);
  }

  /**
   * Add the process and Node.js metrics prom-client collects (resident memory, CPU, heap,
   * event-loop lag, GC), prefixed `tributary_` (e.g. `tributary_process_resident_memory_bytes`).
   * Opt-in: `tributary run` and the demo turn it on; throwaway registries in tools and tests do
   * not start an event-loop monitor each.
   */
  collectProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    collectDefaultMetrics({ register: this.registry, prefix: 'tributary_' });
  }

  inc(name: string, value = 1, labels: Labels = {}): void {
    this.series(name, labels).inc(value);
  }

  set(name: string, value: number, labels: Labels = {}): void {
    this.series(name, labels).set(value);
  }

  /** The current value of one series (0 when it has none). */
  get(name: string, labels: Labels = {}): number {
    const fam = this.families.get(name);
    if (!fam) return 0;
    return (fam.byObject.get(labels) ?? fam.byKey.get(labelKey(labels, fam.labelNames ?? Object.keys(labels))))?.value ?? 0;
  }

  /** The names of every registered metric, default metrics included (for tests and docs). */
  names(): string[] {
    return this.registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name);
  }

  /** The label names of a registered metric (empty for an unknown one). */
  labelNames(name: string): string[] {
    const fam = this.families.get(name);
    if (fam?.labelNames) return [...fam.labelNames];
    return [...((this.registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [])];
  }

  /** A handle that adds fixed labels (pipeline, sink) to every update. */
  scoped(fixed: Labels): { inc(n: string, v?: number, l?: Labels): void; set(n: string, v: number, l?: Labels): void } {
    // With no extra labels (the usual call) the same `fixed` object is passed on, so the
    // identity cache finds the series without building a key.
    const merge = (l?: Labels) => (l && Object.keys(l).length ? { ...fixed, ...l } : fixed);
    return {
      inc: (n, v = 1, l) => this.inc(n, v, merge(l)),
      set: (n, v, l) => this.set(n, v, merge(l)),
    };
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@link render}'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  private series(name: string, labels: Labels): Series {
    let fam = this.families.get(name);
    if (!fam) {
      // An undeclared metric still works (a sink plugin's own counter): typed by its name.
      fam = { type: name.endsWith('_total') ? 'counter' : 'gauge', help: name, byKey: new Map(), byObject: new WeakMap() };
      this.families.set(name, fam);
    }
    const cached = fam.byObject.get(labels);
    if (cached) return cached;
    if (!fam.metric) this.register(name, fam, Object.keys(labels));
    const names = fam.labelNames!;
    const key = labelKey(labels, names);
    let s = fam.byKey.get(key);
    if (!s) {
      for (const l in labels) {
        if (!names.includes(l)) {
          throw new TributaryError(ErrorCodes.METRIC_LABELS, `metric ${name} was updated with label "${l}", but its labels are ${names.join(', ') || '(none)'}`, {
            fix: 'update a metric always with the same label names (see defineRuntimeMetrics in src/runtime/metrics.ts)',
          });
        }
      }
      s = makeSeries(fam, { ...labels });
      fam.byKey.set(key, s);
    }
    fam.byObject.set(labels, s);
    return s;
  }

  private register(name: string, fam: Family, labelNames: string[]): void {
    fam.labelNames = labelNames;
    const cfg = { name, help: fam.help, labelNames, registers: [this.registry] };
    fam.metric = fam.type === 'counter' ? new Counter(cfg) : new Gauge(cfg);
  }
}

function makeSeries(fam: Family, labels: Labels): Series {
  if (fam.type === 'gauge') {
    const child = (fam.metric as Gauge<string>).labels(labels);
    const s: Series = {
      labels,
      value: 0,
      inc(v) {
        s.value += v;
        child.set(s.value);
      },
      set(v) {
        s.value = v;
        child.set(v);
      },
    };
    child.set(0);
    return s;
  }
  const counter = fam.metric as Counter<string>;
  let child = counter.labels(labels);
  const s: Series = {
    labels,
    value: 0,
    inc(v) {
      s.value += v;
      child.inc(v);
    },
    // Parts of the runtime keep plain counters on the hot path and publish their total once a
    // second: the counter moves by the difference. A smaller total is a restart of that count
    // (a new pipeline attempt): the series starts over, which Prometheus reads as a reset.
    set(v) {
      if (v >= s.value) child.inc(v - s.value);
      else {
        counter.remove(labels);
        child = counter.labels(labels);
        child.inc(v);
      }
      s.value = v;
    },
  };
  child.inc(0);
  return s;
}

/** A key of the label values in the family's label order, so `{a,b}` and `{b,a}` meet. */
function labelKey(labels: Labels, names: readonly string[]): string {
  let k = '';
  for (const n of names) k += `${labels[n] ?? ''}\u0000`;
  return k;
}

/** Registers the metric families the runtime publishes, with their help text and labels. */
export function defineRuntimeMetrics(m: Metrics): void {
  const P = ['pipeline'];
  const PS = ['pipeline', 'sink'];
  m.define('tributary_events_in_total', 'counter', 'Change events read from the source.', P);
  m.define('tributary_transactions_in_total', 'counter', 'Transactions read from the source.', P);
  m.define('tributary_events_out_total', 'counter', 'Change events written durably by a sink.', PS);
  m.define('tributary_sink_lag_events', 'gauge', 'Events in the stream not yet committed by the sink.', PS);
  m.define('tributary_sink_lag_seconds', 'gauge', 'Seconds between now and the source commit of the oldest event the sink has not yet written (0 when caught up).', PS);
  m.define('tributary_sink_batches_total', 'counter', 'Batches written by a sink.', PS);
  m.define('tributary_sink_retries_total', 'counter', 'Failed sink writes that were retried.', PS);
  m.define('tributary_sink_item_retries_total', 'counter', 'Items a sink retried inside a batch (elasticsearch: bulk items answered 429/5xx).', PS);
  m.define('tributary_dead_letter_total', 'counter', 'Events parked in the dead-letter store.', PS);
  m.define('tributary_dead_letter_depth', 'gauge', 'Dead letters a sink holds now (parked, neither retried nor discarded).', PS);
  m.define('tributary_stream_buffer_bytes', 'gauge', 'Bytes held in the internal stream.', P);
  m.define('tributary_source_paused', 'gauge', '1 while reading from the source is paused by backpressure.', P);
  m.define('tributary_source_up', 'gauge', '1 while the source database is connected; 0 while it is unreachable, lost or not yet reached.', P);
  m.define('tributary_source_down_seconds', 'gauge', 'Seconds since the source database was lost (0 while it is up).', P);
  m.define('tributary_source_reconnects_total', 'counter', 'Reconnect attempts to the source database after it was lost or unreachable.', P);
  m.define('tributary_pipeline_restarts_total', 'counter', 'Fresh attempts of a pipeline after a failure (start-up waits for the database included).', P);
  m.define('tributary_pipeline_running', 'gauge', '1 while the pipeline runs; 0 while it starts, waits, restarts, has failed or stopped.', P);
  m.define('tributary_source_lag_seconds', 'gauge', 'Seconds between now and the commit time of the last transaction read.', P);
  m.define('tributary_source_last_event_seconds', 'gauge', 'Seconds since the source last delivered a change event (since the pipeline started, before the first one).', P);
  m.define('tributary_source_retained_wal_bytes', 'gauge', 'Postgres: WAL bytes the replication slot holds back on the server (pg_current_wal_lsn() - restart_lsn).', P);
  m.define('tributary_source_retained_binlog_files', 'gauge', 'MySQL/MariaDB: binlog files the server must keep for this pipeline (the file of its acknowledged position and every later one).', P);
  m.define('tributary_acknowledged_position', 'gauge', 'Ordinal of the last position acknowledged to the source database.', P);
  m.define('tributary_snapshot_rows_total', 'counter', 'Rows read by snapshots.', ['pipeline', 'table']);
  m.define('tributary_snapshot_remaining_tables', 'gauge', 'Tables a snapshot still has to read.', P);
  m.define('tributary_snapshot_table_rows', 'gauge', 'Rows of a table the current (or last) snapshot has delivered durably.', ['pipeline', 'table']);
  m.define('tributary_snapshot_table_rows_estimate', 'gauge', 'The database\'s estimate of a snapshotted table\'s rows (0 when it has none).', ['pipeline', 'table']);
  m.define('tributary_log_bytes', 'gauge', 'Bytes of the log (stream: log), compacted state excluded.', P);
  m.define('tributary_log_segments', 'gauge', 'Segment files of the log.', P);
  m.define('tributary_log_first_offset', 'gauge', 'First retained offset of the log.', P);
  m.define('tributary_log_last_offset', 'gauge', 'Offset of the last durable record of the log (-1 when empty).', P);
  m.define('tributary_log_first_timestamp_seconds', 'gauge', 'Source commit time of the first transaction in the log (Unix seconds; 0 when empty).', P);
  m.define('tributary_log_last_timestamp_seconds', 'gauge', 'Source commit time of the last durable transaction in the log (Unix seconds; 0 when empty).', P);
  m.define('tributary_log_horizon_offset', 'gauge', 'Retention horizon: the compacted state stands for the log before this offset (0 while nothing was removed).', P);
  m.define('tributary_log_horizon_timestamp_seconds', 'gauge', 'Commit time up to which the compacted state stands for the removed history (Unix seconds; 0 when none).', P);
  m.define('tributary_sink_committed_offset', 'gauge', 'The sink\'s committed log offset: where it reads on after a restart.', PS);
  m.define('tributary_sink_lag_bytes', 'gauge', 'Bytes of log between the sink\'s committed offset and the committed end of the log.', PS);
}
