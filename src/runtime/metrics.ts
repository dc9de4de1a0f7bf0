/**
 * A small Prometheus registry: counters and gauges with labels, rendered in the text
 * exposition format on `/metrics`. Updating a metric is a map lookup and an add.
 */
type Labels = Record<string, string>;

interface Family {
  type: 'counter' | 'gauge';
  help: string;
  values: Map<string, { labels: Labels; value: number }>;
}

export class Metrics {
  private readonly families = new Map<string, Family>();

  define(name: string, type: 'counter' | 'gauge', help: string): void {
    if (!this.families.has(name)) this.families.set(name, { type, help, values: new Map() });
  }

  private slot(name: string, labels: Labels): { labels: Labels; value: number } {
    let fam = this.families.get(name);
    if (!fam) {
      fam = { type: name.endsWith('_total') ? 'counter' : 'gauge', help: name, values: new Map() };
      this.families.set(name, fam);
    }
    const key = labelKey(labels);
    let s = fam.values.get(key);
    if (!s) {
      s = { labels, value: 0 };
      fam.values.set(key, s);
    }
    return s;
  }

  inc(name: string, value = 1, labels: Labels = {}): void {
    this.slot(name, labels).value += value;
  }

  set(name: string, value: number, labels: Labels = {}): void {
    this.slot(name, labels).value = value;
  }

  get(name: string, labels: Labels = {}): number {
    return this.families.get(name)?.values.get(labelKey(labels))?.value ?? 0;
  }

  /** A handle that adds fixed labels (pipeline, sink) to every update. */
  scoped(fixed: Labels): { inc(n: string, v?: number, l?: Labels): void; set(n: string, v: number, l?: Labels): void } {
    return {
      inc: (n, v = 1, l = {}) => this.inc(n, v, { ...fixed, ...l }),
      set: (n, v, l = {}) => this.set(n, v, { ...fixed, ...l }),
    };
  }

  render(): string {
    const out: string[] = [];
    for (const [name, fam] of this.families) {
      out.push(`# HELP ${name} ${fam.help}`, `# TYPE ${name} ${fam.type}`);
      for (const { labels, value } of fam.values.values()) {
        const l = Object.entries(labels);
        out.push(`${name}${l.length ? `{${l.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '\\$&')}"`).join(',')}}` : ''} ${value}`);
      }
    }
    return out.join('\n') + '\n';
  }
}

function labelKey(labels: Labels): string {
  let k = '';
  for (const name in labels) k += `${name}=${labels[name]};`;
  return k;
}

/** Registers the metric families the runtime publishes, with their help text. */
export function defineRuntimeMetrics(m: Metrics): void {
  m.define('tributary_events_in_total', 'counter', 'Change events read from the source.');
  m.define('tributary_transactions_in_total', 'counter', 'Transactions read from the source.');
  m.define('tributary_events_out_total', 'counter', 'Change events written durably by a sink.');
  m.define('tributary_sink_lag_events', 'gauge', 'Events in the stream not yet committed by the sink.');
  m.define('tributary_sink_lag_seconds', 'gauge', 'Seconds between the source commit of the last committed event and now.');
  m.define('tributary_sink_batches_total', 'counter', 'Batches written by a sink.');
  m.define('tributary_sink_retries_total', 'counter', 'Failed sink writes that were retried.');
  m.define('tributary_dead_letter_total', 'counter', 'Events parked in the dead-letter store.');
  m.define('tributary_dead_letter_depth', 'gauge', 'Events in the sink\'s dead-letter store now (parked, not yet retried or discarded); above 0 is worth an alert.');
  m.define('tributary_stream_buffer_bytes', 'gauge', 'Bytes held in the internal stream.');
  m.define('tributary_source_paused', 'gauge', '1 while reading from the source is paused by backpressure.');
  m.define('tributary_source_up', 'gauge', '1 while the source database is connected; 0 while it is unreachable, lost or not yet reached.');
  m.define('tributary_source_down_seconds', 'gauge', 'Seconds since the source database was lost (0 while it is up).');
  m.define('tributary_source_reconnects_total', 'counter', 'Reconnect attempts to the source database after it was lost or unreachable.');
  m.define('tributary_pipeline_restarts_total', 'counter', 'Fresh attempts of a pipeline after a failure (start-up waits for the database included).');
  m.define('tributary_source_lag_seconds', 'gauge', 'Seconds between now and the commit time of the last transaction read.');
  m.define('tributary_acknowledged_position', 'gauge', 'Ordinal of the last position acknowledged to the source database.');
  m.define('tributary_snapshot_rows_total', 'counter', 'Rows read by snapshots.');
  m.define('tributary_snapshot_remaining_tables', 'gauge', 'Tables a snapshot still has to read.');
  m.define('tributary_log_bytes', 'gauge', 'Bytes of the log (stream: log), compacted state excluded.');
  m.define('tributary_log_segments', 'gauge', 'Segment files of the log.');
  m.define('tributary_log_first_offset', 'gauge', 'First retained offset of the log.');
  m.define('tributary_log_last_offset', 'gauge', 'Offset of the last durable record of the log (-1 when empty).');
  m.define('tributary_log_first_timestamp_seconds', 'gauge', 'Source commit time of the first transaction in the log (Unix seconds; 0 when empty).');
  m.define('tributary_log_last_timestamp_seconds', 'gauge', 'Source commit time of the last durable transaction in the log (Unix seconds; 0 when empty).');
  m.define('tributary_log_horizon_offset', 'gauge', 'Retention horizon: the compacted state stands for the log before this offset (0 while nothing was removed).');
  m.define('tributary_log_horizon_timestamp_seconds', 'gauge', 'Commit time up to which the compacted state stands for the removed history (Unix seconds; 0 when none).');
  m.define('tributary_sink_committed_offset', 'gauge', 'The sink\'s committed log offset: where it reads on after a restart.');
  m.define('tributary_sink_lag_bytes', 'gauge', 'Bytes of log between the sink\'s committed offset and the committed end of the log.');
}
