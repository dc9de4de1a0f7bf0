import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReadPacer } from '../../src/core/read-pacer.js';

/** A socket that records whether it is reading. */
function fakeSocket() {
  const s = { reading: true, pauses: 0, resumes: 0, pause: () => ((s.reading = false), s.pauses++), resume: () => ((s.reading = true), s.resumes++) };
  return s;
}

describe('ReadPacer', () => {
  it('pauses after a small read and resumes by itself a moment later', async () => {
    const sock = fakeSocket();
    const p = new ReadPacer(sock, 1024, 5);
    p.afterRead(100);
    assert.equal(sock.reading, false, 'paused after a small read');
    p.afterRead(100); // a read already queued: no second pause
    assert.equal(sock.pauses, 1);
    await sleep(30);
    assert.equal(sock.reading, true, 'reading again after the pause');
    assert.equal(sock.resumes, 1);
  });

  it('does not pause after a large read', () => {
    const sock = fakeSocket();
    new ReadPacer(sock, 1024, 5).afterRead(4096);
    assert.equal(sock.pauses, 0);
  });

  it('backpressure held during a pace keeps the socket paused until released', async () => {
    const sock = fakeSocket();
    const p = new ReadPacer(sock, 1024, 5);
    p.afterRead(10);
    p.hold(); // the stream is full
    await sleep(30);
    assert.equal(sock.reading, false, 'the pace timer must not resume a held socket');
    p.release();
    assert.equal(sock.reading, true);
    assert.equal(sock.pauses, 1, 'one pause for both');
  });

  it('a pace during backpressure does not resume early, and stop() silences the timer', async () => {
    const sock = fakeSocket();
    const p = new ReadPacer(sock, 1024, 5);
    p.hold();
    p.afterRead(10);
    p.release(); // backpressure over, pace still running
    assert.equal(sock.reading, false);
    p.stop();
    await sleep(30);
    assert.equal(sock.resumes, 0, 'nothing touches a stopped socket');
  });
});
