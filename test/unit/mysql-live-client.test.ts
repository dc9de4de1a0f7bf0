import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PACKET, PacketFramer, encodeBinlogDump, encodeBinlogDumpGtid, encodeRegisterSlave, framePackets, parseErrPacket } from '../../connectors/mysql/client.js';

function collect(): { framer: PacketFramer; out: Buffer[] } {
  const out: Buffer[] = [];
  // Copy: the framer may hand out views of the caller's chunks.
  return { framer: new PacketFramer((p) => out.push(Buffer.from(p))), out };
}

/** Feed `wire` cut at the given chunk sizes (cycled). */
function feedIn(framer: PacketFramer, wire: Buffer, sizes: number[]): void {
  let off = 0;
  let k = 0;
  while (off < wire.length) {
    const n = Math.max(1, sizes[k++ % sizes.length]!);
    framer.feed(wire.subarray(off, off + n));
    off += n;
  }
}

describe('mysql client: packet framing', () => {
  it('cuts packets out of one chunk, and out of chunks split anywhere (even inside headers)', () => {
    const payloads = [Buffer.from([0, 1, 2, 3]), Buffer.alloc(0), Buffer.from('hello binlog'), Buffer.alloc(70000, 7)];
    const wire = Buffer.concat(payloads.map((p, i) => framePackets(p, i)));
    for (const sizes of [[wire.length], [1], [2, 3, 5], [4], [3], [65536], [17, 1, 1, 2]]) {
      const { framer, out } = collect();
      feedIn(framer, wire, sizes);
      assert.deepEqual(out, payloads, `chunk sizes ${sizes}`);
      assert.equal(framer.idle, true);
    }
  });

  it('reassembles an event that spans several 16 MB packets', () => {
    const big = Buffer.alloc(MAX_PACKET * 2 + 10);
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
    big[0] = 0; // OK byte
    const small = Buffer.from([0, 42]);
    const wire = Buffer.concat([framePackets(big, 0), framePackets(small, 3)]);
    assert.equal(wire.readUIntLE(0, 3), MAX_PACKET, 'first part is max size');
    const { framer, out } = collect();
    feedIn(framer, wire, [65536, 1000003, 7]);
    assert.equal(out.length, 2);
    assert.ok(out[0]!.equals(big));
    assert.deepEqual(out[1], small);
  });

  it('a payload of exactly 16 MB - 1 ends with an empty packet', () => {
    const exact = Buffer.alloc(MAX_PACKET, 1);
    const wire = framePackets(exact, 0);
    assert.equal(wire.length, MAX_PACKET + 8, 'max-size packet plus an empty one');
    assert.equal(wire.readUIntLE(MAX_PACKET + 4, 3), 0);
    const { framer, out } = collect();
    framer.feed(wire);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.length, MAX_PACKET);
    assert.equal(framer.seq, 1, 'the sequence id of the last packet');
  });

  it('does not deliver a partial packet', () => {
    const wire = framePackets(Buffer.from('abcdef'), 0);
    const { framer, out } = collect();
    framer.feed(wire.subarray(0, wire.length - 1));
    assert.equal(out.length, 0);
    assert.equal(framer.idle, false);
    framer.feed(wire.subarray(wire.length - 1));
    assert.deepEqual(out, [Buffer.from('abcdef')]);
  });
});

describe('mysql client: commands and errors', () => {
  it('encodes COM_BINLOG_DUMP as command, pos, flags, server id, file', () => {
    const b = encodeBinlogDump(4242, 'mariadb-bin.000003', 1234);
    assert.equal(b[0], 0x12);
    assert.equal(b.readUInt32LE(1), 1234);
    assert.equal(b.readUInt16LE(5), 0);
    assert.equal(b.readUInt32LE(7), 4242);
    assert.equal(b.toString('utf8', 11), 'mariadb-bin.000003');
  });

  it('encodes COM_REGISTER_SLAVE', () => {
    const b = encodeRegisterSlave(7, 'h');
    assert.equal(b[0], 0x15);
    assert.equal(b.readUInt32LE(1), 7);
    assert.equal(b[5], 1);
    assert.equal(b.toString('utf8', 6, 7), 'h');
    assert.equal(b.length, 1 + 4 + 1 + 1 + 1 + 1 + 2 + 4 + 4);
  });

  it('encodes COM_BINLOG_DUMP_GTID with [start, end) intervals', () => {
    const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const b = encodeBinlogDumpGtid(9, `${uuid}:1-5:7`);
    assert.equal(b[0], 0x1e);
    assert.equal(b.readUInt16LE(1), 4);
    assert.equal(b.readUInt32LE(3), 9);
    assert.equal(b.readUInt32LE(7), 0, 'no file name');
    assert.equal(b.readBigUInt64LE(11), 4n, 'position 4');
    const size = b.readUInt32LE(19);
    const data = b.subarray(23);
    assert.equal(data.length, size);
    assert.equal(data.readBigUInt64LE(0), 1n, 'one sid');
    assert.equal(data.toString('hex', 8, 24), uuid.replace(/-/g, ''));
    assert.equal(data.readBigUInt64LE(24), 2n, 'two intervals');
    assert.deepEqual([data.readBigUInt64LE(32), data.readBigUInt64LE(40), data.readBigUInt64LE(48), data.readBigUInt64LE(56)], [1n, 6n, 7n, 8n]);
  });

  it('parses an ERR packet (e.g. 1236, purged binlog)', () => {
    const msg = 'Could not find first log file name in binary log index file';
    const p = Buffer.concat([Buffer.from([0xff, 0xd4, 0x04]), Buffer.from('#HY000'), Buffer.from(msg)]);
    assert.deepEqual(parseErrPacket(p), { errno: 1236, sqlState: 'HY000', message: msg });
  });
});
