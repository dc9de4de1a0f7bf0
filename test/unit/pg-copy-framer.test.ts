import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CopyDataFramer } from '../../connectors/postgres/copy-framer.js';

/** One protocol message: type byte, int32 length (itself included), body. */
function msg(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b[0] = type.charCodeAt(0);
  b.writeUInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

/** A replication session as the server sends it: CopyBothResponse, CopyData, then the end. */
function session(): { wire: Buffer; copies: Buffer[]; others: Buffer } {
  const before = [msg('N', Buffer.from('notice\0')), msg('W', Buffer.from([0, 0, 0]))];
  const copies: Buffer[] = [];
  for (let i = 0; i < 60; i++) {
    // Sizes from 0 to a few hundred bytes, including bodies shorter than a header.
    const body = Buffer.alloc((i * 37) % 300);
    for (let j = 0; j < body.length; j++) body[j] = (i + j) & 0xff;
    copies.push(body);
  }
  const after = [msg('c', Buffer.alloc(0)), msg('C', Buffer.from('COPY 0\0')), msg('Z', Buffer.from('I'))];
  const wire = Buffer.concat([...before, ...copies.map((c) => msg('d', c)), ...after]);
  return { wire, copies, others: Buffer.concat([...before, ...after]) };
}

function run(chunks: Buffer[]): { copies: Buffer[]; forwarded: Buffer } {
  const copies: Buffer[] = [];
  const fwd: Buffer[] = [];
  const f = new CopyDataFramer((b, s, e) => copies.push(Buffer.from(b.subarray(s, e))), (c) => fwd.push(Buffer.from(c)));
  for (const c of chunks) f.onData(c);
  return { copies, forwarded: Buffer.concat(fwd) };
}

test('CopyData bodies are framed and every other message reaches the parser byte for byte, whatever the chunking', () => {
  const s = session();
  const check = (chunks: Buffer[], how: string) => {
    const r = run(chunks);
    assert.equal(r.copies.length, s.copies.length, how);
    r.copies.forEach((c, i) => assert.ok(c.equals(s.copies[i]!), `${how}: copy ${i}`));
    assert.ok(r.forwarded.equals(s.others), `${how}: forwarded bytes`);
  };
  check([s.wire], 'one chunk');
  // Every split point, so the length field and bodies are cut everywhere.
  for (let at = 1; at < s.wire.length; at++) check([s.wire.subarray(0, at), s.wire.subarray(at)], `split at ${at}`);
  check([...s.wire].map((b) => Buffer.from([b])), 'one byte per chunk');
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 97) + 1;
  for (let k = 0; k < 50; k++) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < s.wire.length; ) {
      const n = rnd();
      chunks.push(s.wire.subarray(i, i + n));
      i += n;
    }
    check(chunks, `random chunking ${k}`);
  }
});

test('an error inside copy-both hands the rest of the stream to the parser unframed', () => {
  const err = msg('E', Buffer.from('SERROR\0Mslot is gone\0\0'));
  const later = msg('d', Buffer.from('not framed any more'));
  const wire = Buffer.concat([msg('W', Buffer.from([0, 0, 0])), msg('d', Buffer.from('x')), err, later]);
  const r = run([wire.subarray(0, 9), wire.subarray(9)]);
  assert.deepEqual(r.copies.map(String), ['x']);
  assert.ok(r.forwarded.equals(Buffer.concat([msg('W', Buffer.from([0, 0, 0])), err, later])));
});

test('install replaces the socket parser and keeps feeding it', async () => {
  const { EventEmitter } = await import('node:events');
  const socket = new EventEmitter();
  const seen: Buffer[] = [];
  socket.on('data', (c: Buffer) => seen.push(c));
  const copies: string[] = [];
  CopyDataFramer.install(socket, (b, s, e) => copies.push(b.toString('utf8', s, e)));
  assert.equal(socket.listenerCount('data'), 1);
  socket.emit('data', Buffer.concat([msg('W', Buffer.alloc(3)), msg('d', Buffer.from('row'))]));
  assert.deepEqual(copies, ['row']);
  assert.equal(Buffer.concat(seen).length, 8);
});
