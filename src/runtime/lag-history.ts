/**
 * The console's lag charts: a ring buffer per sink holding the last hour of lag (events, bytes,
 * seconds) and throughput, sampled off the hot path every `intervalMs` (5 s by default).
 *
 * Why a ring of typed arrays: an hour at 5 s is 720 points × 5 numbers per sink, allocated once,
 * so sampling never grows memory however long the process runs.
 */

/** One sink's reading at one instant, as {@link samplesFromStatus} collects it. */
export interface LagSample {
  pipeline: string;
  sink: string;
  lagEvents: number;
  /** Bytes behind the log's committed end (stream: log); null without a log. */
  lagBytes: number | null;
  lagSeconds: number;
  /** Events this sink has written durably since its pipeline attempt started (a counter). */
  eventsOut: number;
}

/** A chart point: `[t (ms since epoch), lag_events, lag_bytes|null, lag_seconds, events_per_s]`. */
export type HistoryPoint = [number, number, number | null, number, number];

/** The body of `GET /history` (docs/admin-api.md). */
export interface HistoryBody {
  interval_ms: number;
  series: Array<{ pipeline: string; sink: string; points: HistoryPoint[] }>;
}

const FIELDS = 5;

class Ring {
  private readonly data: Float64Array;
  private head = 0;
  private count = 0;
  /** The last counter reading, to turn `eventsOut` into a rate. */
  last: { t: number; eventsOut: number } | null = null;

  constructor(private readonly capacity: number) {
    this.data = new Float64Array(capacity * FIELDS);
  }

  push(p: HistoryPoint): void {
    const o = this.head * FIELDS;
    this.data[o] = p[0];
    this.data[o + 1] = p[1];
    this.data[o + 2] = p[2] ?? NaN;
    this.data[o + 3] = p[3];
    this.data[o + 4] = p[4];
    this.head = (this.head + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  points(): HistoryPoint[] {
    const out: HistoryPoint[] = [];
    const start = (this.head - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) {
      const o = ((start + i) % this.capacity) * FIELDS;
      const bytes = this.data[o + 2]!;
      out.push([this.data[o]!, this.data[o + 1]!, Number.isNaN(bytes) ? null : bytes, this.data[o + 3]!, this.data[o + 4]!]);
    }
    return out;
  }
}

/**
 * Samples `sample()` every `intervalMs` into one ring per (pipeline, sink), keeping `windowMs`
 * (an hour) of points. `close()` stops the timer and is idempotent.
 */
export class LagHistory {
  private readonly rings = new Map<string, { pipeline: string; sink: string; ring: Ring }>();
  private readonly capacity: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: { intervalMs: number; windowMs?: number; sample: () => LagSample[]; now?: () => number }) {
    this.capacity = Math.max(2, Math.ceil((o.windowMs ?? 3_600_000) / o.intervalMs));
  }

  /** Takes a first sample now, then one every interval (the timer never keeps the process alive). */
  start(): this {
    if (this.timer) return this;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
    this.timer.unref();
    return this;
  }

  /** Takes one sample (exposed for tests). */
  tick(): void {
    const t = this.o.now?.() ?? Date.now();
    let samples: LagSample[];
    try {
      samples = this.o.sample();
    } catch {
      return; // a pipeline between attempts: the next tick reads it again
    }
    for (const s of samples) {
      const id = `${s.pipeline}\u0000${s.sink}`;
      let r = this.rings.get(id);
      if (!r) this.rings.set(id, (r = { pipeline: s.pipeline, sink: s.sink, ring: new Ring(this.capacity) }));
      const prev = r.ring.last;
      // A restarted attempt starts its counter again at 0: show no throughput rather than a negative one.
      const rate = prev && t > prev.t && s.eventsOut >= prev.eventsOut ? ((s.eventsOut - prev.eventsOut) * 1000) / (t - prev.t) : 0;
      r.ring.last = { t, eventsOut: s.eventsOut };
      r.ring.push([t, s.lagEvents, s.lagBytes, s.lagSeconds, Math.round(rate * 100) / 100]);
    }
  }

  body(filter?: { pipeline?: string | null; sink?: string | null }): HistoryBody {
    const series = [...this.rings.values()]
      .filter((r) => (!filter?.pipeline || r.pipeline === filter.pipeline) && (!filter?.sink || r.sink === filter.sink))
      .map((r) => ({ pipeline: r.pipeline, sink: r.sink, points: r.ring.points() }));
    return { interval_ms: this.o.intervalMs, series };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** Reads the samples from each pipeline's `/status` view (a supervisor's `status()`). */
export function samplesFromStatus(pipelines: ReadonlyArray<{ name: string; status(): Record<string, unknown> }>): LagSample[] {
  const out: LagSample[] = [];
  for (const p of pipelines) {
    const sinks = (p.status().sinks ?? []) as Array<{ name: string; lagEvents?: number; lagSeconds?: number; eventsOut?: number; lag?: { bytes?: number } | null }>;
    for (const s of sinks) {
      out.push({ pipeline: p.name, sink: s.name, lagEvents: s.lagEvents ?? 0, lagBytes: s.lag?.bytes ?? null, lagSeconds: s.lagSeconds ?? 0, eventsOut: s.eventsOut ?? 0 });
    }
  }
  return out;
}
