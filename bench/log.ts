/**
 * The `log` section: the embedded log alone, with no source and no sink.
 *
 * - Appends: transactions of 10 events of a realistic Postgres envelope (~330 bytes),
 *   appended and made durable (fsync), plain and with zstd batches; events/s and the
 *   bytes each event takes on disk.
 * - Time travel: a log of `lookupEvents` events (1M keys, each updated many times) is
 *   written, then `tributary state --at T --key K` runs as a fresh process (a cold start,
 *   as a user would run it), and its answer is checked against the row the bench wrote.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SegmentLog } from '../src/log/segment-log.js';
import { keyRangeOf } from '../src/log/json-scan.js';
import { logDir } from '../src/stream/log-stream.js';
import { BIN } from './lib/proc.js';
import type { LogAppend, LogLookup } from './lib/results.js';

const TXN_EVENTS = 10;
const KEYS = 1_000_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

function envelope(id: number, version: number, ts: number, lsn: string, txid: number): Buffer {
  const op = version === 0 ? 'c' : 'u';
  const before = version === 0 ? 'null' : `{"id":${id},"name":"row-${id}","qty":${(id * 7 + version - 1) % 1000},"price":"${(id % 9973) / 100}","note":"a note of some forty characters, v${version - 1}","updated_at":"2026-01-01T00:00:00.000000Z"}`;
  return Buffer.from(
    `{"op":"${op}","before":${before},"after":{"id":${id},"name":"row-${id}","qty":${(id * 7 + version) % 1000},"price":"${(id % 9973) / 100}","note":"a note of some forty characters, v${version}","updated_at":"2026-01-01T00:00:00.000000Z"},` +
      `"key":{"id":${id}},"source":{"connector":"postgresql","name":"bench","db":"postgres","schema":"public","table":"bench_rows","ts_ms":${ts},"snapshot":"false","lsn":"${lsn}","txId":${txid}},"ts_ms":${ts}}`,
  );
}

/** Event n of the synthetic history: key n mod 1M, version n div 1M; transaction n div 10 commits at T0 + that many ms. */
function eventAt(n: number): { id: number; version: number; txn: number; ts: number } {
  const txn = Math.floor(n / TXN_EVENTS);
  return { id: n % KEYS, version: Math.floor(n / KEYS), txn, ts: T0 + txn };
}

const lsnOf = (txn: number) => `0/${(0x1000000 + txn * 0x100).toString(16).toUpperCase()}`;

/** An envelope with its key's range, as a source's writer notes it (the log does not search for it). */
interface Pooled {
  env: Buffer;
  ks: number;
  ke: number;
}

async function writeHistory(dir: string, events: number, compression: 'none' | 'zstd', pool?: Pooled[]): Promise<number> {
  const log = await SegmentLog.open(dir, { compression });
  const t0 = performance.now();
  for (let n = 0; n < events; ) {
    const { txn, ts } = eventAt(n);
    const pos = lsnOf(txn);
    for (let i = 0; i < TXN_EVENTS && n < events; i++, n++) {
      const e = eventAt(n);
      const p = pool ? pool[n % pool.length]! : null;
      const env = p ? p.env : envelope(e.id, e.version, e.ts, pos, e.txn);
      const [ks, ke] = p ? [p.ks, p.ke] : keyRangeOf(env, 0, env.length);
      if (!log.appendEvent(pos, i, 'public.bench_rows', ts, env[7]!, env, ks, ke, 0, env.length)) await log.drained();
    }
    if (!log.appendCommit(pos, ts, lsnOf(txn + 1))) await log.drained();
  }
  await log.flush();
  const seconds = (performance.now() - t0) / 1000;
  await log.close();
  return seconds;
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) if (f.isFile()) n += statSync(join(f.parentPath, f.name)).size;
  return n;
}

/** Appends alone, durable: `events` events, plain then zstd. */
export async function logAppends(events: number, log: (s: string) => void): Promise<LogAppend[]> {
  // Envelopes made up front, with their key ranges (sources note them as they write), so the
  // figure is the log's work, not building JSON strings.
  const pool = Array.from({ length: 100_000 }, (_, n): Pooled => {
    const e = eventAt(n);
    const env = envelope(e.id, e.version, e.ts, lsnOf(e.txn), e.txn);
    const [ks, ke] = keyRangeOf(env, 0, env.length);
    return { env, ks, ke };
  });
  const out: LogAppend[] = [];
  for (const compression of ['none', 'zstd'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-log-'));
    try {
      const seconds = await writeHistory(dir, events, compression, pool);
      const r: LogAppend = { compression, events, seconds, eventsPerSec: Math.round(events / seconds), bytesPerEvent: Math.round(dirBytes(dir) / events) };
      out.push(r);
      log(`log appends (${compression}): ${events} events in ${seconds.toFixed(2)} s = ${r.eventsPerSec}/s, ${r.bytesPerEvent} B/event on disk`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

/** A one-key `tributary state --at` over a log of `events` events, in a fresh process. */
export async function logLookup(events: number, log: (s: string) => void): Promise<LogLookup> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tributary-bench-tt-'));
  try {
    const written = await writeHistory(logDir(stateDir, 'benchlog'), events, 'zstd');
    log(`time travel: wrote ${events} events (zstd) in ${written.toFixed(1)} s, ${(dirBytes(stateDir) / (1 << 20)).toFixed(0)} MiB`);
    const config = join(stateDir, 'benchlog.yaml');
    writeFileSync(config, `name: benchlog\nsource: { type: postgres, url: "postgres://nobody@127.0.0.1:1/none", tables: [public.bench_rows] }\nstate: { type: file, dir: ${stateDir} }\nsinks: [{ name: out, type: "null" }]\nhttp: { port: 0 }\n`);
    // A key in the middle of the key space, at an instant in the second half of the log:
    // its answer is a version that many later ones follow.
    const at = eventAt(Math.floor(events * 0.6));
    const id = 424_242 % Math.min(KEYS, events);
    let want = -1;
    for (let v = 0; v * KEYS + id <= Math.floor(events * 0.6); v++) if (eventAt(v * KEYS + id).ts <= at.ts) want = v;
    const args = [BIN, 'state', '--config', config, '--table', 'public.bench_rows', '--at', new Date(at.ts).toISOString(), '--key', JSON.stringify({ id })];
    const t0 = performance.now();
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, args, { maxBuffer: 1 << 20 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}: ${errOut.slice(-500)}`)) : resolve(out))),
    );
    const ms = Math.round(performance.now() - t0);
    if (process.env.TRIBUTARY_BENCH_KEEP) log(`kept: node ${args.map((a) => (a.startsWith("{") ? `'${a}'` : a)).join(" ")}`);
    const row = JSON.parse(stdout.trim()) as { note: string };
    const ok = row.note === `a note of some forty characters, v${want}`;
    log(`time travel: one key of ${events} events answered in ${ms} ms (a fresh process, node start-up included)${ok ? '' : ` WRONG ROW: ${stdout.trim()}`}`);
    return { events, ms, correct: ok };
  } finally {
    if (!process.env.TRIBUTARY_BENCH_KEEP) rmSync(stateDir, { recursive: true, force: true });
  }
}
