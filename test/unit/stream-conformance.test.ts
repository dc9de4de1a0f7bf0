/**
 * The stream conformance suite (`tributary/testing`, src/testing/stream.ts) for the two
 * backends of this release: the embedded log (durable, replay, time, retention, compaction)
 * and the memory stream (none of those). The NATS JetStream and Kafka backends run the same
 * suite from their own tests.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { describeStreamConformance, streamConformanceCases, type StreamBackend } from '../../src/testing/index.js';
import { LogStream } from '../../src/stream/log-stream.js';
import { MemoryStream } from '../../src/stream/memory-stream.js';

describeStreamConformance('log', {
  capabilities: { durable: true, replay: true, time: true, retention: true, compaction: true },
  open: (dir, o) =>
    LogStream.open({
      dir,
      parse: o.parse,
      logger: pino({ level: 'silent' }),
      tailBytes: o.maxBytes,
      // Small segments, so retention (whole segments) has something to trim in a small log.
      log: { segmentBytes: 4096, maxPendingBytes: o.maxBytes },
      retention: { maxAgeMs: o.maxAgeMs },
      compaction: { enabled: true, tombstonesMs: 86_400_000 },
    }),
  offsetAfterTime: (s, ts) => (s as LogStream).log.offsetAfterTime(ts),
  async retain(s, o) {
    const log = s as LogStream;
    await log.retain(o.keepFrom, o.now);
    return { start: log.start };
  },
});

describeStreamConformance('memory', {
  capabilities: { durable: false, replay: false, time: false, retention: false, compaction: false },
  open: async (_dir, o) => new MemoryStream(o.maxBytes),
});

/**
 * The suite must be able to fail: backends broken the ways a new one could be fail the case
 * that guards it (and are named in the message).
 */
describe('stream conformance: the suite catches broken backends', () => {
  const failures = async (backend: StreamBackend): Promise<Map<string, string>> => {
    const out = new Map<string, string>();
    for (const c of streamConformanceCases('broken', backend)) {
      if (c.skip) continue;
      try {
        await c.run();
        out.set(c.name, 'ok');
      } catch (err) {
        out.set(c.name, (err as Error).message);
      }
    }
    return out;
  };
  const failed = (m: Map<string, string>, re: RegExp) => [...m].filter(([n, v]) => re.test(n) && v !== 'ok');
  const memoryCaps = { durable: false, replay: false, time: false, retention: false, compaction: false };

  it('a stream that delivers an entry twice fails the order case', async () => {
    const m = await failures({
      capabilities: memoryCaps,
      open: async (_d, o) => {
        const s = new MemoryStream(o.maxBytes);
        let n = 0;
        const append = s.append.bind(s);
        // Every 17th entry goes in twice (a redelivery bug).
        s.append = (e) => (++n % 17 === 0 && append(e), append(e));
        return s;
      },
    });
    assert.ok(failed(m, /append order/).length === 1, JSON.stringify([...m]));
  });

  it('a stream that never pushes back fails the byte-bound case', async () => {
    const m = await failures({
      capabilities: memoryCaps,
      open: async (_d, o) => {
        const s = new MemoryStream(o.maxBytes);
        const append = s.append.bind(s);
        s.append = (e) => (append(e), true);
        return s;
      },
    });
    const f = failed(m, /bounded in bytes/);
    assert.equal(f.length, 1, JSON.stringify([...m]));
    assert.match(f[0]![1], /never answered false/);
  });

  it('retention that ignores what groups have not read fails the retention case', async () => {
    const m = await failures({
      capabilities: { durable: true, replay: true, time: false, retention: true, compaction: false },
      open: (dir, o) => LogStream.open({ dir, parse: o.parse, logger: pino({ level: 'silent' }), tailBytes: o.maxBytes, log: { segmentBytes: 4096, maxPendingBytes: o.maxBytes }, retention: { maxAgeMs: o.maxAgeMs } }),
      async retain(s, o) {
        const log = s as LogStream;
        await log.retain(Number.MAX_SAFE_INTEGER, o.now);
        return { start: log.start };
      },
    });
    const f = failed(m, /retention trims/);
    assert.equal(f.length, 1, JSON.stringify([...m]));
    assert.match(f[0]![1], /keeps everything/);
  });
});
